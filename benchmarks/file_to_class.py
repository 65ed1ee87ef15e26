"""From a NeRF file to a class: the shipped encoder against render-then-classify, timed in one invocation
on the same NeRFs, each method in its own process (so each has its own peak memory).

python benchmarks/file_to_class.py [--track independent] [--nerfs 52] [--batch 64] [--threads 1]

Per NeRF, one at a time: the shipped encoder reads the file, builds its inputs, encodes and classifies
(`time_weight_space`); render-then-classify reads the file, renders its orbit views and runs the CNN on
them, at the benchmark's setting (4 views of 32 px) and at 8 views of 64 px. Batched: NeRFs per second
when ``--batch`` files go through together (one encoder call; one CNN call on all their views). The CNN
is untrained: its cost does not depend on its weights.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from pathlib import Path

import torch

from common import save_result
from nerfspace.demo import shipped
from nerfspace.encoders.inputs import collate, nerf_inputs
from nerfspace.evaluation.baselines import _cnn
from nerfspace.evaluation.classify import EmbeddingClassifier
from nerfspace.evaluation.evaluate import time_weight_space
from nerfspace.inference import Encoder
from nerfspace.render import orbit_cameras
from nerfspace.shapes.categories import CATEGORIES
from nerfspace.zoo.items import zoo_items
from nerfspace.zoo.storage import load_nerf

RTC_SETTINGS = {
    "render-then-classify, 4 views x 32 px": (4, 32),
    "render-then-classify, 8 views x 64 px": (8, 64),
}


def _encoder(track: str, files: list[Path], batch: int) -> dict:
    s = next(s for s in shipped() if s.track == track)
    encoder, classifier = Encoder.load(s.encoder), EmbeddingClassifier.load(s.classifier)[0]
    one = time_weight_space(encoder, files, classifier)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(files), batch):
            nerfs = [load_nerf(f) for f in files[i : i + batch]]
            classifier.predict(
                encoder.module(collate([nerf_inputs(n, encoder.composition.needs) for n in nerfs]))
            )
    return {
        "ms_per_nerf": 1000 * one["total"],
        "parts_ms": {k: 1000 * v for k, v in one.items() if k != "total"},
        "batched_nerfs_per_s": len(files) / (time.perf_counter() - t0),
    }


@torch.no_grad()
def _render_classify(files: list[Path], views: int, size: int) -> torch.Tensor:
    cams, cnn = orbit_cameras(views, size), _cnn(len(CATEGORIES)).eval()
    images = [load_nerf(f).render(cams).permute(0, 3, 1, 2) for f in files]
    return cnn(torch.cat(images)).reshape(len(files), views, -1).mean(1).argmax(-1)


def _rtc(files: list[Path], views: int, size: int, batch: int) -> dict:
    t0 = time.perf_counter()
    for f in files:
        _render_classify([f], views, size)
    t1 = time.perf_counter()
    for i in range(0, len(files), batch):
        _render_classify(files[i : i + batch], views, size)
    t2 = time.perf_counter()
    return {"ms_per_nerf": 1000 * (t1 - t0) / len(files), "batched_nerfs_per_s": len(files) / (t2 - t1)}


def _measure(args: tuple) -> dict:
    kind, threads, payload = args
    torch.set_num_threads(threads)
    result = _encoder(*payload) if kind == "encoder" else _rtc(*payload)
    return {**result, "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--track", default="independent")
    ap.add_argument("--nerfs", type=int, default=52)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    s = next(s for s in shipped() if s.track == args.track)
    items = zoo_items(s.zoo)
    files = [it.file for it in items[:: max(1, len(items) // args.nerfs)][: args.nerfs]]
    jobs = {"shipped encoder": ("encoder", args.threads, (args.track, files, args.batch))}
    jobs |= {
        name: ("rtc", args.threads, (files, v, px, args.batch)) for name, (v, px) in RTC_SETTINGS.items()
    }
    ctx = mp.get_context("spawn")
    methods = {}
    for name, job in jobs.items():
        with ctx.Pool(1) as pool:
            methods[name] = pool.apply(_measure, (job,))
        print(name, methods[name], flush=True)
    base = methods["shipped encoder"]["ms_per_nerf"]
    for name in RTC_SETTINGS:
        methods[name]["encoder_speedup"] = methods[name]["ms_per_nerf"] / base
    save_result(
        "file_to_class",
        {
            "track": args.track,
            "nerfs": len(files),
            "batch": args.batch,
            "threads": args.threads,
            "methods": methods,
        },
    )


if __name__ == "__main__":
    main()
