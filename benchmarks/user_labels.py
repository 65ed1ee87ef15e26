"""Your own labels, through the command line as a user runs it: 5-shot classification of procedural test
objects with `nerfspace embed`, a labels CSV, `nerfspace classify fit` and `classify predict`.

A fresh independent-capture zoo (objects of another seed than the benchmark's, so the shipped encoder
never saw them) in one seen and one unseen architecture; the seen-architecture NeRFs of 5 objects per
category are labelled (5 labels per class: the nearest class mean), every other object's NeRFs are
predicted. The shipped independent-track encoder beside the no-learning field-invariant feature, the
same commands on both; compared with the benchmark's 5-shot number for that encoder (BENCHMARKS.md).

python benchmarks/user_labels.py [--objects-per-class 10] [--archs mlp,hash_l8] [--seed 7] [--fit-steps 400]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess

import torch

from common import ROOT, save_result
from nerfspace.archs import SEEN
from nerfspace.demo import shipped
from nerfspace.embeddings import save_embeddings
from nerfspace.evaluation.field_features import field_embeddings
from nerfspace.zoo.items import zoo_items

RUNS = ROOT / "runs" / "user_labels"
SHOTS = 5


def run(cli: str, *args: str) -> str:
    return subprocess.run([cli, *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects-per-class", type=int, default=10)
    ap.add_argument("--archs", default="mlp,hash_l8")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fit-steps", type=int, default=400)  # the benchmark zoo's, which the encoder knows
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cli = str(ROOT / ".venv" / "bin" / "nerfspace")
    zoo = RUNS / "zoo"
    build = [
        "zoo",
        "build",
        str(zoo),
        "--classes",
        "all",
        "-n",
        str(args.objects_per_class),
        "--archs",
        args.archs,
    ]
    build += ["--captures", "independent", "--seed", str(args.seed), "--steps", str(args.fit_steps)]
    run(cli, *build, "--workers", str(args.workers))
    items = zoo_items(zoo)
    track = next(s for s in shipped() if s.track == "independent")
    embeddings = {
        "invariant encoder (shipped)": RUNS / "encoder.safetensors",
        "field-invariant": RUNS / "fi.safetensors",
    }
    if not embeddings["invariant encoder (shipped)"].exists():
        run(
            cli,
            "embed",
            str(track.encoder),
            str(zoo),
            "--out",
            str(embeddings["invariant encoder (shipped)"]),
        )
    if not embeddings["field-invariant"].exists():
        save_embeddings(embeddings["field-invariant"], field_embeddings(items, "field-invariant"))
    objects: dict[str, list[str]] = {}
    for it in sorted(items, key=lambda it: it.object):
        if it.object not in objects.setdefault(it.category, []):
            objects[it.category].append(it.object)
    labelled = {o for objs in objects.values() for o in objs[:SHOTS]}
    labels = RUNS / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label"])
        for it in items:
            if it.object in labelled and it.preset in SEEN:
                w.writerow([str(it.file), it.category])
    truth = {str(it.file): (it.category, it.preset, it.object) for it in items}
    results = {}
    for name, emb in embeddings.items():
        clf = RUNS / f"clf_{emb.stem}.safetensors"
        run(cli, "classify", "fit", str(emb), "--labels", str(labels), "--out", str(clf), "--overwrite")
        predictions = json.loads(run(cli, "classify", "predict", str(clf), str(emb), "--json"))
        scores: dict[str, list[bool]] = {"seen": [], "unseen": []}
        for p in predictions:
            category, preset, obj = truth[p["file"]]
            if obj not in labelled:
                scores["seen" if preset in SEEN else "unseen"].append(p["label"] == category)
        results[name] = {k: sum(v) / len(v) for k, v in scores.items() if v}
        print(name, results[name], flush=True)
    save_result(
        "user_labels",
        {
            "zoo": {
                "objects_per_class": args.objects_per_class,
                "archs": args.archs,
                "seed": args.seed,
                "fit_steps": args.fit_steps,
            },
            "shots": SHOTS,
            "queries": len([it for it in items if it.object not in labelled]),
            "accuracy": results,
        },
    )


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
