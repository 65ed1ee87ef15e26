"""What each choice of the invariant encoder adds, on the benchmark's independent-track zoo: the shipped
recipe (object and category parts, 4 turned views), without the turned views, without the category part,
and with neither; beside the no-learning baselines measured in the same invocation on the same zoo.

python benchmarks/invariant_ablation.py [--benchmark runs/benchmark] [--seed 0] [--epochs 250]

Needs the benchmark's independent zoo (python benchmarks/evaluation.py --tracks independent). Each variant
trains with the product's trainer into <benchmark>/independent/ablation/<variant> and is evaluated with the
protocol (resumable: a finished variant is reused while its checkpoint is unchanged).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from common import ROOT, save_result
from nerfspace.benchmark import _cached, _field_baseline, _headline
from nerfspace.cache import file_hash
from nerfspace.encoders import Composition
from nerfspace.encoders.invariant import InvariantEncoderConfig
from nerfspace.evaluation.evaluate import EvalConfig, evaluate
from nerfspace.evaluation.field_features import FIELD_BASELINES
from nerfspace.training.trainer import train, train_config
from nerfspace.zoo.items import zoo_items

OBJECT_ONLY = Composition((InvariantEncoderConfig(),))
VARIANTS = {  # name -> (composition or None for the preset's, turned views)
    "object + category parts, 4 views (shipped)": (None, 4),
    "object + category parts, no views": (None, 0),
    "object part only, 4 views": (OBJECT_ONLY, 4),
    "object part only, no views": (OBJECT_ONLY, 0),
}


def _variant(
    zoo: Path, out: Path, composition: Composition | None, views: int, seed: int, epochs: int
) -> dict:
    cfg = train_config("l_con", encoder="invariant", epochs=epochs, seed=seed, views=views)
    if composition is not None:
        cfg = replace(cfg, encoder=composition)
    done = (out / "checkpoints" / "resume.pt").exists()
    train(zoo, out, cfg, resume=done)
    best = file_hash(out / "checkpoints" / "best.safetensors")
    return _cached(
        out / "results.json",
        lambda: evaluate(out, zoo, EvalConfig(seed=seed))[0],
        lambda r: r.get("checkpoint") == best,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", default=str(ROOT / "runs" / "benchmark"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=250)
    args = ap.parse_args()
    track = Path(args.benchmark) / "independent"
    zoo = track / "zoo"
    if not (zoo / "manifest.json").exists():
        raise SystemExit(f"error: {zoo}: no zoo; run benchmarks/evaluation.py --tracks independent first")
    variants = {}
    for i, (name, (composition, views)) in enumerate(VARIANTS.items()):
        out = track / "ablation" / f"variant{i}"
        print(f"{name} -> {out}", flush=True)
        variants[name] = _headline(_variant(zoo, out, composition, views, args.seed, args.epochs))
    items = zoo_items(zoo)
    baselines = {}
    for method in FIELD_BASELINES:
        print(f"baseline {method}", flush=True)
        baselines[method] = _headline(_field_baseline(items, method, args.seed))
    save_result(
        "invariant_ablation",
        {
            "zoo": str(zoo),
            "seed": args.seed,
            "epochs": args.epochs,
            "variants": variants,
            "baselines": baselines,
        },
    )


if __name__ == "__main__":
    main()
