#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/assets/test_ui_browser.py drives it through Playwright;
# no browser download). Installs it when missing and apt-get is usable (as root, or with sudo without a
# password); otherwise says so, and those tests skip.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo="sudo -n"
else
  echo "browser: chromium is not installed and apt-get needs root; the browser tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; then
  echo "browser: apt-get could not install chromium; the browser tests will skip" >&2
  exit 0
fi
echo "browser: $(chromium --version)"
