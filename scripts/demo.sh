#!/usr/bin/env bash
# Set up (if needed), fit a small zoo of NeRFs of procedural objects, look at it, train an encoder on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
out=${1:-zoos/demo}
.venv/bin/nerfspace zoo build "$out" --classes chair,car,airplane --objects-per-class 1
.venv/bin/nerfspace inspect "$out/nerfs/hash/chair_0000.safetensors"
.venv/bin/nerfspace render "$out/nerfs/triplane/car_0000.safetensors" --out "$out/car_triplane.png"
# a few epochs of L_R+C on the three objects (no validation split at this size), then embed the zoo
rm -rf "$out/run"
.venv/bin/nerfspace train "$out" --loss l_rec_con --out "$out/run" --epochs 10
.venv/bin/nerfspace embed "$out/run" "$out" --out "$out/embeddings.safetensors"
