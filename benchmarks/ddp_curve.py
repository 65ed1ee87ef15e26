"""Training under torchrun on 2 CPU processes against one process: the loss curve of the first 100 steps
at the same global batch, and a run resumed under torchrun.

python benchmarks/ddp_curve.py [--steps 100] [--out runs/ddp_curve]

A zoo of 4 categories x 4 objects in mlp and hash (fitted once, 60 steps per NeRF) gives 2 training steps
an epoch (4 objects x 2 architectures a step). Per preset (`small`: GMN + field, L_R+C; `invariant`:
L_C, whose encoder has dropout), the same `nerfspace train` command runs in one process and under
`torchrun --nproc-per-node 2` (gloo); then under torchrun for half the epochs and resumed to all of them,
against the same cut in one process. Reported: the largest relative difference of each logged loss over
the steps (and, in the JSON only, each run's wall time: this script may share the machine).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import ROOT, save_result
from nerfspace.zoo import ZooConfig, build_zoo, fit_config

COLUMNS = ("loss", "l_rec", "l_con", "l_cat")
PRESETS = {"small": "l_rec_con", "invariant": "l_con"}


def _zoo(out: Path) -> Path:
    zoo = out / "zoo"
    cfg = ZooConfig(classes=("chair", "car", "lamp", "table"), objects_per_class=4, archs=("mlp", "hash"))
    build_zoo(zoo, cfg, fit_cfg=replace(fit_config(), steps=60))
    return zoo


def _train(procs: int, zoo: Path, run: Path, *args: str) -> float:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    cmd = [
        *(launch if procs > 1 else [sys.executable]),
        "-m",
        "nerfspace",
        "train",
        str(zoo),
        "--out",
        str(run),
    ]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def _curve(run: Path) -> list[dict[str, float]]:
    with open(run / "log.csv") as f:
        return [{k: float(r[k]) for k in COLUMNS if r.get(k)} for r in csv.DictReader(f)]


def _largest_difference(a: list[dict], b: list[dict]) -> dict[str, float]:
    assert len(a) == len(b), (len(a), len(b))
    return {k: max(abs(y[k] - x[k]) / max(abs(x[k]), 1e-12) for x, y in zip(a, b, strict=True)) for k in a[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "ddp_curve")
    args = ap.parse_args()
    zoo = _zoo(args.out)
    epochs = args.steps // 2
    results = {}
    for preset, loss in PRESETS.items():
        common = ("--loss", loss, "--preset", preset)
        full, half = (*common, "--epochs", str(epochs)), (*common, "--epochs", str(epochs // 2))
        runs = {name: args.out / preset / name for name in ("one", "two", "one_cut", "two_cut")}
        for run in runs.values():
            shutil.rmtree(run, ignore_errors=True)
        seconds = {
            "one": _train(1, zoo, runs["one"], *full),
            "two": _train(2, zoo, runs["two"], *full),
        }
        for procs, name in ((1, "one_cut"), (2, "two_cut")):
            _train(procs, zoo, runs[name], *half)
            _train(procs, zoo, runs[name], *full, "--resume")
        curves = {name: _curve(run) for name, run in runs.items()}
        results[preset] = {
            "loss": loss,
            "steps": len(curves["one"]),
            "seconds": seconds,
            "torchrun_vs_one": _largest_difference(curves["one"], curves["two"]),
            "resumed_torchrun_vs_resumed_one": _largest_difference(curves["one_cut"], curves["two_cut"]),
        }
        print(preset, results[preset], flush=True)
    save_result("ddp_curve", {"presets": results})


if __name__ == "__main__":
    main()
