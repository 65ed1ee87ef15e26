"""Zoo building on 1 and 2 workers, locally and on Ray: the scaling ratio in one run, and the bytes.

python benchmarks/scale_out.py [--repeats 2] [--steps 150] [--out runs/scale_out]

One zoo (2 categories x 4 objects, 4 architectures: 32 NeRFs in batches of 2, 16 tasks) built from nothing
in a fresh process per run, whole-process wall time: local and Ray executors at 1 and 2 workers, one
thread per worker (so 2 workers use both cores and 1 worker one of them). Runs alternate between the
settings in every repeat so that drift of the machine's speed falls on all of them; the ratio of each
executor is taken repeat by repeat and its median reported. Every run's NeRF files are compared with the
first run's: they must be byte-identical.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from common import ROOT, save_result
from nerfspace.executors import Executor
from nerfspace.zoo import ZooConfig, build_zoo, fit_config

SETTINGS = [("local", 1), ("ray", 1), ("local", 2), ("ray", 2)]
CONFIG = ZooConfig(classes=("chair", "car"), objects_per_class=4, archs=("mlp", "hash", "triplane", "mlp_2l"))


def _one(kind: str, workers: int, out: Path, steps: int) -> None:
    """A single build (run in its own process by `main`)."""
    fit_cfg = replace(fit_config(), steps=steps, batch=2)
    build_zoo(out, CONFIG, Executor(kind, workers, threads=1), fit_cfg=fit_cfg)


def _files(zoo: Path) -> dict:
    return {p.relative_to(zoo): p.read_bytes() for p in (zoo / "nerfs").glob("*/*.safetensors")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "scale_out")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        _one(args.one[0], int(args.one[1]), args.out, args.steps)
        return

    seconds: dict[str, list[float]] = {f"{k} x{w}": [] for k, w in SETTINGS}
    reference, identical = None, True
    for r in range(args.repeats):
        for kind, workers in SETTINGS if r % 2 == 0 else SETTINGS[::-1]:
            out = args.out / f"{kind}_{workers}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [sys.executable, __file__, "--one", kind, str(workers), "--out", str(out)]
            t0 = time.perf_counter()
            subprocess.run([*cmd, "--steps", str(args.steps)], check=True)
            seconds[f"{kind} x{workers}"].append(time.perf_counter() - t0)
            files = _files(out)
            reference = reference or files
            identical &= files == reference
            print(kind, workers, f"{seconds[f'{kind} x{workers}'][-1]:.1f} s", flush=True)
    nerfs = len(reference)
    ratios = {
        kind: statistics.median(
            a / b for a, b in zip(seconds[f"{kind} x1"], seconds[f"{kind} x2"], strict=True)
        )
        for kind in ("local", "ray")
    }
    save_result(
        "scale_out",
        {
            "nerfs": nerfs,
            "tasks": nerfs // 2,
            "steps": args.steps,
            "repeats": args.repeats,
            "seconds": seconds,
            "speedup_2_workers": ratios,
            "byte_identical": identical,
        },
    )


if __name__ == "__main__":
    main()
