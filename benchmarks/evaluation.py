"""The evaluation benchmark of DESIGN.md §7 into BENCHMARKS.md: runs (or resumes) the same pipeline
as `nerfspace benchmark` (zoo, L_R / L_C / L_R+C / paper-recipe trainings, evaluation, baselines)
and stores its summary as benchmarks/results/evaluation_seed<S>.json.

python benchmarks/evaluation.py [--seed 0] [--out runs/benchmark] [--objects-per-class 20]
                                [--fit-steps 400] [--epochs 30] [--workers 2]
                                [--runs l_rec_con,l_rec,l_con,paper_recipe,field_only]
                                [--tracks aligned,independent]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from common import RESULTS, ROOT, save_result  # noqa: E402
from nerfspace.benchmark import RUNS, TRACKS, BenchmarkConfig, run_benchmark  # noqa: E402
from nerfspace.evaluation.tables import summary_tracks  # noqa: E402

RUN_KEYS = ("command", "date", "machine", "config", "timings", "peak_memory_mb", "seen")


def merged(previous: dict, summary: dict) -> dict:
    """``summary`` with the tracks of an earlier result of the same seed that this invocation did not run
    (a result from before the tracks is the aligned track), each with the command and date that made it."""
    earlier = {k: v for k, v in previous.items() if k not in RUN_KEYS}
    kept = {t: r for t, r in summary_tracks(earlier).items() if t not in summary["tracks"]}
    made_by = {"command": previous.get("command"), "date": previous.get("date")}
    for track in kept.values():
        track.setdefault("made_by", made_by)
    return {**summary, "tracks": {**kept, **summary["tracks"]}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="benchmark folder (default runs/benchmark, _seedS for S > 0)")
    default = BenchmarkConfig()
    ap.add_argument("--objects-per-class", type=int, default=default.objects_per_class)
    ap.add_argument("--fit-steps", type=int, default=default.fit_steps)
    ap.add_argument("--epochs", type=int, default=default.epochs)
    ap.add_argument("--workers", type=int, default=default.workers)
    ap.add_argument("--runs", default=",".join(RUNS), help="comma-separated trainings (default: all)")
    ap.add_argument("--tracks", default=",".join(TRACKS), help="capture tracks (default: all)")
    args = ap.parse_args()
    unknown = set(args.runs.split(",")) - set(RUNS)
    if unknown:
        ap.error(f"unknown runs {sorted(unknown)}; choose from {', '.join(RUNS)}")
    if set(args.tracks.split(",")) - set(TRACKS):
        ap.error(f"unknown tracks in {args.tracks!r}; choose from {', '.join(TRACKS)}")
    out = Path(args.out or ROOT / "runs" / ("benchmark" if args.seed == 0 else f"benchmark_seed{args.seed}"))
    cfg = BenchmarkConfig(
        objects_per_class=args.objects_per_class,
        fit_steps=args.fit_steps,
        epochs=args.epochs,
        seed=args.seed,
        workers=args.workers,
        runs=tuple(args.runs.split(",")),
        tracks=tuple(args.tracks.split(",")),
    )
    summary = run_benchmark(out, cfg, say=lambda s: print(time.strftime("%H:%M:%S"), s, flush=True))
    previous = RESULTS / f"evaluation_seed{args.seed}.json"
    if previous.exists():
        summary = merged(json.loads(previous.read_text()), summary)
    save_result(f"evaluation_seed{args.seed}", summary)


if __name__ == "__main__":
    main()
