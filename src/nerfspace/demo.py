"""The main job on shipped data: the benchmark's test zoo (all 13 architectures) embedded with the
shipped L_R+C encoder, classified with the shipped classifier, evaluated and reported.

``demo_data/`` holds ``zoo/`` (the test split of the benchmark zoo), ``encoder.safetensors`` (the
benchmark's L_R+C checkpoint) and ``classifier.safetensors`` (the architecture-agnostic classifier fitted
on that run's train embeddings of the seen architectures). ``ship`` refreshes them from a benchmark.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from nerfspace.atomic import atomic_write_bytes, atomic_write_json
from nerfspace.cache import file_hash
from nerfspace.errors import InputError
from nerfspace.evaluation.classify import EmbeddingClassifier
from nerfspace.evaluation.evaluate import EvalConfig, evaluate
from nerfspace.report.html import write_report
from nerfspace.zoo.build import split_zoo

DATA = Path(__file__).parent / "demo_data"
ZOO, ENCODER, CLASSIFIER = DATA / "zoo", DATA / "encoder.safetensors", DATA / "classifier.safetensors"
SHIPPED_RUN = "l_rec_con"


def headline(results: dict) -> dict:
    """The ``nerfspace demo --json`` contract (docs/cli.md): accuracies and recalls in [0, 1]."""
    c, r = results["classification"], results["retrieval"]
    return {
        "classification": {"seen": c["seen"], "unseen": c["unseen"], "per_arch": c["per_arch"]},
        "retrieval": {
            **{f"recall@{k}": r[f"recall@{k}"] for k in (1, 5, 10)},
            "map": r["map"],
        },
        "arch_identifiability": results["arch_identifiability"],
        "arch_chance": results["arch_chance"],
        "seconds_per_nerf": results["seconds_per_nerf"]["total"],
    }


def run_demo(out: Path, progress: Callable[[int, int], None] | None = None) -> dict:
    """Evaluate the shipped encoder on the shipped test zoo; writes ``out/report.html`` and
    ``out/results.json`` and returns the full results."""
    missing = [p.name for p in (ZOO, ENCODER, CLASSIFIER) if not p.exists()]
    if missing:
        raise InputError(f"shipped demo data missing ({', '.join(missing)} in {DATA}); reinstall nerfspace")
    classifier, meta = EmbeddingClassifier.load(CLASSIFIER)
    if meta.get("checkpoint") != file_hash(ENCODER):
        raise InputError(f"{CLASSIFIER}: fitted on another encoder's embeddings than {ENCODER}")
    results, _, _ = evaluate(ENCODER, ZOO, EvalConfig(), classifier=classifier, progress=progress)
    write_report(out, results, title="nerfspace demo: shipped encoder on the shipped test zoo")
    atomic_write_json(Path(out) / "results.json", results)
    return results


def ship(benchmark: Path, dest: Path = DATA, run: str = SHIPPED_RUN) -> None:
    """Copy a benchmark's test zoo, its ``run`` encoder (best checkpoint) and that run's classifier
    into ``dest`` (replacing what is there)."""
    benchmark = Path(benchmark)
    encoder = benchmark / "runs" / run / "checkpoints" / "best.safetensors"
    classifier = benchmark / "reports" / run / "classifier.safetensors"
    for p in (encoder, classifier):
        if not p.exists():
            raise InputError(f"{p}: missing; run the benchmark first")
    if (dest / "zoo").exists():
        shutil.rmtree(dest / "zoo")
    split_zoo(benchmark / "zoo", dest / "zoo", "test")
    atomic_write_bytes(dest / ENCODER.name, encoder.read_bytes())
    atomic_write_bytes(dest / CLASSIFIER.name, classifier.read_bytes())
