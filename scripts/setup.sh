#!/usr/bin/env bash
# Create .venv in the repo root with every dependency (idempotent: skips when nothing changed).
# torch/torchvision go first, pinned as a pair: open-clip-torch needs torchvision, and an unpinned
# install lets pip swap torch builds. GPU users: see README "GPU".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=".venv/.setup-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==${TORCH_VERSION:-2.14.1}" "torchvision==${TORCHVISION_VERSION:-0.29.1}"
.venv/bin/python -m pip install -q -e '.[dev,transnet,s3]'
rm -f .venv/.setup-*
touch "$stamp"
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
