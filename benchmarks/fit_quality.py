"""Held-out PSNR and fitting rate of every preset at `small` scale (photometric, the real code path).

python benchmarks/fit_quality.py [--presets all] [--objects-per-class 1]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import sys
import time

import torch

from common import RESULTS, save_result
from nerfspace.archs import PRESETS, get_preset, resolve_archs
from nerfspace.seeding import derive_seed
from nerfspace.shapes import CATEGORIES, make_object
from nerfspace.zoo import ZooConfig, fit, fit_config, plan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="all")
    ap.add_argument("--objects-per-class", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = fit_config("photometric", "small")
    objects = [
        make_object(c, derive_seed("bench", args.seed, c, i))
        for c in CATEGORIES
        for i in range(args.objects_per_class)
    ]
    for preset in resolve_archs(args.presets):
        spec = get_preset(preset)
        psnrs, start = [], time.perf_counter()
        for b in range(0, len(objects), cfg.batch):
            batch = objects[b : b + cfg.batch]
            psnrs += fit(
                spec, batch, [derive_seed("nerf", args.seed, preset, b + i) for i in range(len(batch))], cfg
            ).psnr
        seconds = time.perf_counter() - start
        row = {
            "psnr": psnrs,
            "median": statistics.median(psnrs),
            "min": min(psnrs),
            "max": max(psnrs),
            "seconds": seconds,
            "s_per_nerf": seconds / len(psnrs),
            "nerfs_per_min": 60 * len(psnrs) / seconds,
            "threads": args.threads,
            "command": "python " + " ".join(sys.argv),
        }
        print(
            f"{preset:14s} median {row['median']:.2f} dB  min {row['min']:.2f}"
            f"  {row['s_per_nerf']:.1f} s/NeRF",
            flush=True,
        )
        _record(preset, row, cfg, args.objects_per_class)


def _record(preset: str, row: dict, cfg, objects_per_class: int) -> None:
    """Merge one preset's row into the stored results (runs for other presets may write concurrently)."""
    with open(RESULTS.parent / ".fit_quality.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = RESULTS / "fit_quality.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        same = old.get("fit_config") == cfg.to_dict() and old.get("objects_per_class") == objects_per_class
        results = {**(old.get("presets", {}) if same else {}), preset: row}
        results = {p: results[p] for p in PRESETS if p in results}
        counts = {}
        for n in plan(ZooConfig(objects_per_class=10), cfg)["nerfs"]:
            counts[n["preset"]] = counts.get(n["preset"], 0) + 1
        rate = {p: r["s_per_nerf"] for p, r in results.items()}
        fallback = statistics.mean(rate.values())
        hours = sum(n * rate.get(p, fallback) for p, n in counts.items()) / 3600
        save_result(
            "fit_quality",
            {
                "fit_config": cfg.to_dict(),
                "objects_per_class": objects_per_class,
                "presets": results,
                "zoo_estimate": {
                    "nerfs": sum(counts.values()),
                    "hours": hours,
                    "measured_presets": sorted(rate) == sorted(PRESETS),
                },
            },
        )


if __name__ == "__main__":
    main()
