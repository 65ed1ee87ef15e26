"""Encoder training cost at small scale on this CPU: cache build per NeRF, seconds per step for each
loss, validation time, and the resulting seconds per epoch for a zoo of 13 categories x 10 objects.

python benchmarks/train_speed.py [--zoo ZOO] [--steps 20]

Without --zoo it builds (once) `zoos/bench_train`: 13 categories x 1 object x the 3 seen presets,
fitted photometrically with 300 steps (enough for realistic occupancy grids, which set the decoder's
rendering cost). Steps run the real training code (`compute_loss`, backward, AdamW).
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from common import ROOT, save_result
from nerfspace.archs import SEEN
from nerfspace.training.data import ZooCache
from nerfspace.training.trainer import Model, TrainConfig, batch_items, compute_loss, run_data, validate
from nerfspace.zoo import ZooConfig, build_zoo, fit_config
from nerfspace.zoo.build import split_counts
from nerfspace.zoo.items import zoo_items


def _zoo(path: str | None) -> Path:
    if path:
        return Path(path)
    zoo = ROOT / "zoos" / "bench_train"
    cfg = ZooConfig(objects_per_class=1, archs=SEEN)
    build_zoo(zoo, cfg, fit_cfg=replace(fit_config(), steps=300))
    return zoo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    zoo = _zoo(args.zoo)

    items = [it for it in zoo_items(zoo) if it.preset in SEEN]
    cache = ZooCache(Path(f"/tmp/nerfspace_train_speed_{time.time_ns()}"))  # cold cache, measured
    t0 = time.perf_counter()
    for it in items:
        cache.inputs([it], TrainConfig().encoder.needs)
    t1 = time.perf_counter()
    for it in items:
        cache.targets(it)
    t2 = time.perf_counter()

    counts = split_counts(10)
    train_objects, val_nerfs = 13 * counts["train"], 13 * counts["val"] * len(SEEN)
    results = {}
    for loss in ("l_rec", "l_con", "l_rec_con"):
        cfg = TrainConfig(loss=loss)
        data = run_data(zoo, cfg)
        for o, v in data.val.items():  # every object of the bench zoo trains here, whatever its split
            data.train.setdefault(o, v)
        torch.manual_seed(0)
        model = Model(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        objects = sorted(data.train)
        gen = torch.Generator().manual_seed(0)
        times = []
        for step in range(args.steps + 2):
            chosen = [
                objects[i] for i in torch.randperm(len(objects), generator=gen)[: cfg.objects_per_batch]
            ]
            members = batch_items(data, chosen, data.pairs[step % len(data.pairs)])
            s = time.perf_counter()
            total, _ = compute_loss(model, cache, members, cfg, gen)
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            if step >= 2:  # two warm-up steps
                times.append(time.perf_counter() - s)
        v_data = replace(data, val={o: data.train[o] for o in objects})
        s = time.perf_counter()
        validate(model, cache, v_data, cfg)
        val_s_per_nerf = (time.perf_counter() - s) / sum(len(v) for v in v_data.val.values())
        step_s = statistics.median(times)
        steps_per_epoch = math.ceil(train_objects / cfg.objects_per_batch)
        results[loss] = {
            "s_per_step": step_s,
            "steps_per_epoch_13x10": steps_per_epoch,
            "s_per_epoch_13x10": steps_per_epoch * step_s + val_nerfs * val_s_per_nerf,
            "validation_s_per_nerf": val_s_per_nerf,
        }
        print(
            f"{loss:10s} {step_s:.3f} s/step  {results[loss]['s_per_epoch_13x10']:.1f} s/epoch (13x10 zoo)",
            flush=True,
        )
    save_result(
        "train_speed",
        {
            "zoo": str(zoo),
            "nerfs": len(items),
            "threads": args.threads,
            "inputs_ms_per_nerf": 1000 * (t1 - t0) / len(items),
            "targets_ms_per_nerf": 1000 * (t2 - t1) / len(items),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "encoder": TrainConfig().encoder.to_dict(),
            "losses": results,
        },
    )


if __name__ == "__main__":
    main()
