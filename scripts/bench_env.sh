#!/usr/bin/env bash
# A separate venv for the peers that benchmarks compare against (PySceneDetect); never the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv-bench/bin/python ]; then
    python3 -m venv .venv-bench
    .venv-bench/bin/pip install -q "scenedetect-headless==0.7.2" "av==18.1.0" numpy
fi
echo .venv-bench/bin/python
