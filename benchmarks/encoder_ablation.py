"""Can the encoder tell objects apart? L_C alone, every NeRF of a zoo in one batch, for the paper's
graph features and readout, with probe features, with the output-neuron readout, with both, and with
both and the field encoder (the small preset).

python benchmarks/encoder_ablation.py [--zoo ZOO] [--steps 50]

Reports, after training, the cross-architecture recall@1 over the zoo's objects (chance: 1 / objects)
and the cosine between embeddings of different objects of one architecture. Without --zoo it builds
(once) `zoos/ablation`: 4 categories x 2 objects, mlp and triplane, the standard photometric fit.
This measures learnability (can the loss separate objects at all), not generalisation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from common import ROOT, save_result
from nerfspace.encoders import ComposedEncoder, Composition, GMNConfig, preset
from nerfspace.losses import SigLIP
from nerfspace.training.data import ZooCache
from nerfspace.zoo import ZooConfig, build_zoo
from nerfspace.zoo.items import zoo_items

VARIANTS = {
    "paper features, edge readout": Composition((GMNConfig(probes=False, output_readout=False),)),
    "+ probes": Composition((GMNConfig(probes=True, output_readout=False),)),
    "+ output readout": Composition((GMNConfig(probes=False, output_readout=True),)),
    "+ both": Composition((GMNConfig(),)),
    "+ both + field encoder (small preset)": preset("small"),
}


def _zoo(path: str | None) -> Path:
    if path:
        return Path(path)
    zoo = ROOT / "zoos" / "ablation"
    build_zoo(
        zoo,
        ZooConfig(
            classes=("chair", "car", "lamp", "airplane"), objects_per_class=2, archs=("mlp", "triplane")
        ),
    )
    return zoo


def _scores(z: torch.Tensor, ids: torch.Tensor, presets: list[str]) -> dict:
    zn = torch.nn.functional.normalize(z, dim=1)
    cos = zn @ zn.T
    cross = torch.tensor([[a != b for b in presets] for a in presets])
    same = ids[:, None] == ids[None]
    masked = cos.masked_fill(~cross, -2.0)
    return {
        "recall@1": float((ids[masked.argmax(1)] == ids).float().mean()),
        "cos_same_object_cross_arch": float(cos[same & cross].mean()),
        "cos_different_objects_same_arch": float(cos[~same & ~cross].mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--zoo", default=None)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    zoo = _zoo(args.zoo)
    items = zoo_items(zoo)
    cache = ZooCache(zoo / "cache")
    inputs = cache.inputs(items, ("graph", "field"))
    objects = sorted({it.object for it in items})
    ids = torch.tensor([objects.index(it.object) for it in items])
    presets = [it.preset for it in items]
    results = {}
    for name, composition in VARIANTS.items():
        torch.manual_seed(0)
        encoder, siglip = ComposedEncoder(composition), SigLIP()
        opt = torch.optim.AdamW([*encoder.parameters(), *siglip.parameters()], lr=1e-3, weight_decay=1e-2)
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = siglip(encoder(inputs), ids)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            results[name] = {**_scores(encoder(inputs), ids, presets), "final_loss": float(loss)}
        results[name]["seconds"] = time.perf_counter() - start
        print(f"{name:30s} {results[name]}", flush=True)
    save_result(
        "encoder_ablation",
        {
            "zoo": str(zoo),
            "nerfs": len(items),
            "objects": len(objects),
            "steps": args.steps,
            "variants": results,
        },
    )


if __name__ == "__main__":
    main()
