#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite; then, with no arguments, run the float-sensitive
# tests again on the portable vector path (ATEN_CPU_CAPABILITY=default), as another CPU would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pip install -q -e ".[dev,scale]"  # the optional engines are tested too
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # torch threads must not spin on a shared 2-core machine
.venv/bin/python -m pytest "$@"
if [ $# -eq 0 ]; then
    ATEN_CPU_CAPABILITY=default .venv/bin/python -m pytest \
        tests/test_fields.py tests/test_render.py tests/test_encoder.py tests/test_graphs.py tests/test_shapes.py
fi
