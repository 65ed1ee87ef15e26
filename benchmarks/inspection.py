"""Inspection (normal versus defective parts) on an inspection zoo, every method in the same run: the
shipped independent-track encoder, the no-learning field features (`field-invariant`, `field-probe`) and
the render-based score (`render-ring`), each scored by k nearest normals of the reference architecture;
and the surface map (`nerfspace.defect_map`) of every test part against its k nearest reference normals
by the shipped encoder, its score and its localisation.

python benchmarks/inspection.py [--zoo runs/inspection/zoo] [--k 3] [--false-alarm 0.05] [--batch 1000]

Build the zoo first (about 20 min on 2 cores; resumable):

    nerfspace zoo build runs/inspection/zoo --classes parts -n 12 --archs mlp --test-archs hash,triplane \\
        --defects all --severities medium,high,2 --defective-per-class 1 --captures independent --seed 0 \\
        --workers 2

Embeddings are cached next to the zoo (``emb_<method>.safetensors``). Scoring cost: ``--batch`` NeRF files
(the zoo's test files, repeated to that count) go from file to flag through the shipped encoder and the
fitted anomaly model, timed end to end. The surface maps take about 1-2 s each (every test part and
every reference normal, left out).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from common import MAP_METHOD as MAP  # noqa: E402
from common import ROOT, save_result  # noqa: E402
from nerfspace.demo import shipped  # noqa: E402
from nerfspace.embeddings import Embeddings, load_embeddings, save_embeddings  # noqa: E402
from nerfspace.evaluation.anomaly import AnomalyConfig, KNNAnomaly  # noqa: E402
from nerfspace.evaluation.field_features import field_embeddings, nerf_embeddings  # noqa: E402
from nerfspace.evaluation.inspection import (  # noqa: E402
    InspectionConfig,
    inspection_results,
    is_reference,
    map_results,
    render_ring_features,
)
from nerfspace.inference import Encoder  # noqa: E402
from nerfspace.zoo.build import load_manifest  # noqa: E402
from nerfspace.zoo.items import zoo_items  # noqa: E402

ENCODER = "invariant encoder (shipped, independent track)"
OBJECT_PART = "its object part alone"

BASELINES = ("field-invariant", "field-probe", "render-ring")


def _embeddings(zoo: Path, items: list, encoder: Encoder) -> dict[str, tuple[Embeddings, float]]:
    """Every method's embeddings of the zoo (cached) and the seconds per NeRF they took to make."""
    out = {}
    for name in (ENCODER, *BASELINES):
        path = zoo / f"emb_{name.split(' ')[0]}.safetensors"
        if not path.exists():
            start = time.perf_counter()
            if name == ENCODER:
                emb = encoder.embed([it.file for it in items])  # from the files: nothing cached
            elif name == "render-ring":
                emb = nerf_embeddings(items, name, render_ring_features)
            else:
                emb = field_embeddings(items, name)
            seconds = (time.perf_counter() - start) / len(items)
            emb.encoder = {**emb.encoder, "seconds_per_nerf": seconds}
            save_embeddings(path, emb)
            print(f"{name}: {seconds * 1000:.0f} ms per NeRF", flush=True)
        emb = load_embeddings(path)
        out[name] = (emb, emb.encoder.get("seconds_per_nerf"))
    return out


def _batch_cost(encoder: Encoder, items: list, model: KNNAnomaly, batch: int) -> dict:
    """Seconds to take ``batch`` NeRF files (test files, repeated) from file to flag, nothing cached."""
    files = [it.file for it in items if it.split == "test"]
    files = [files[i % len(files)] for i in range(batch)]
    start = time.perf_counter()
    flags = model.predict(encoder.embed(files, batch_size=64).vectors)
    seconds = time.perf_counter() - start
    return {
        "parts": batch,
        "seconds": seconds,
        "ms_per_part": 1000 * seconds / batch,
        "flagged": int(flags.sum()),
    }


def _every(n: int):
    def progress(done: int, total: int) -> None:
        if done % n == 0 or done == total:
            print(f"surface maps: {done}/{total}", flush=True)

    return progress


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo", default=str(ROOT / "runs" / "inspection" / "zoo"))
    ap.add_argument("--reference", default="mlp")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--false-alarm", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    zoo = Path(args.zoo)
    manifest = load_manifest(zoo)
    if not manifest.get("complete"):
        raise SystemExit(f"{zoo}: the zoo is not complete; build it first (see --help)")
    items = zoo_items(zoo)
    track = next(s for s in shipped() if s.track == "independent")
    encoder = Encoder.load(track.encoder)
    cfg = InspectionConfig(args.reference, AnomalyConfig(args.k, args.false_alarm))
    results, cost = {}, {}
    embeddings = _embeddings(zoo, items, encoder)
    emb, seconds = embeddings[ENCODER]
    columns = encoder.composition.columns("object")  # the part trained to tell objects apart
    embeddings[OBJECT_PART] = (
        Embeddings(emb.vectors[:, columns], emb.items, emb.encoder, emb.checkpoint),
        seconds,
    )
    for name, (emb, seconds) in embeddings.items():
        results[name] = inspection_results(emb, items, cfg)
        cost[name] = {"embed_ms_per_nerf": None if seconds is None else 1000 * seconds}
    maps = map_results(embeddings[ENCODER][0], items, cfg, progress=_every(20))
    localisation = maps.pop("localisation")
    results[MAP] = maps
    cost[MAP] = {"embed_ms_per_nerf": 1000 * maps["seconds_per_map"]}
    ref = [it for it in items if is_reference(it, cfg)]
    normals = encoder.embed([it.file for it in ref])
    model = KNNAnomaly(cfg.anomaly).fit(normals.vectors, [it.object for it in ref])
    save_result(
        "inspection",
        {
            "zoo": {
                k: manifest["config"][k]
                for k in (
                    "classes",
                    "objects_per_class",
                    "archs",
                    "test_archs",
                    "defects",
                    "severities",
                    "defective_per_class",
                    "seed",
                )
            },
            "captures": manifest["config"].get("captures", {}).get("mode", "aligned"),
            "methods": results,
            "cost": cost,
            "batch": _batch_cost(encoder, items, model, args.batch),
            "localisation": localisation,
        },
    )


if __name__ == "__main__":
    main()
