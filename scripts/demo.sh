#!/usr/bin/env bash
# The main job: set up (if needed), then embed the shipped test zoo (the benchmark's test objects in all
# 13 architectures) with the shipped L_R+C encoder, print the headline table and write the HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
.venv/bin/nerfspace demo --out "${1:-nerfspace-demo}"
