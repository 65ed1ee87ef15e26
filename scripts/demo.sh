#!/usr/bin/env bash
# Set up (if needed), fit a small zoo of NeRFs of procedural objects and look at it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
out=${1:-zoos/demo}
.venv/bin/nerfspace zoo build "$out" --classes chair,car,airplane --objects-per-class 1
.venv/bin/nerfspace inspect "$out/nerfs/hash/chair_0000.safetensors"
.venv/bin/nerfspace render "$out/nerfs/triplane/car_0000.safetensors" --out "$out/car_triplane.png"
