"""Batched fitting (K NeRFs of one spec in one vectorised pass) against fitting them one at a time.

python benchmarks/fit_speed.py [--k 8] [--steps 200] [--presets seen]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from common import save_result
from nerfspace.archs import get_preset, resolve_archs
from nerfspace.shapes import CATEGORIES, make_object
from nerfspace.zoo import fit, fit_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--presets", default="seen")
    args = ap.parse_args()
    cfg = replace(fit_config("photometric", "small"), steps=args.steps, batch=args.k)
    objects = [make_object(CATEGORIES[i % len(CATEGORIES)], i) for i in range(args.k)]
    seeds = list(range(args.k))
    results = {}
    for preset in resolve_archs(args.presets):
        spec = get_preset(preset)
        t0 = time.perf_counter()
        batched = fit(spec, objects, seeds, cfg).psnr
        t1 = time.perf_counter()
        single = [fit(spec, [o], [s], cfg).psnr[0] for o, s in zip(objects, seeds, strict=True)]
        t2 = time.perf_counter()
        results[preset] = {
            "batched_s": t1 - t0,
            "sequential_s": t2 - t1,
            "ratio": (t2 - t1) / (t1 - t0),
            "psnr_batched": batched,
            "psnr_sequential": single,
        }
        print(
            f"{preset}: batched {t1 - t0:.1f}s, one at a time {t2 - t1:.1f}s,"
            f" {results[preset]['ratio']:.2f}x",
            flush=True,
        )
    save_result("fit_speed", {"k": args.k, "steps": args.steps, "presets": results})


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
