#!/usr/bin/env bash
# Create .venv with the CPU build of torch 2.13.0 (served from local disk here; never a CUDA build)
# and nerfspace installed in editable mode with its dev extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[dev]"
