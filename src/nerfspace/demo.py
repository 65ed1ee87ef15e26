"""The main job on shipped data: per capture track, the benchmark's test zoo (all 13 architectures)
embedded with that track's shipped encoder, classified with its shipped classifier, evaluated and
reported beside the no-learning field baselines measured on the same NeRFs.

``demo_data/<track>/`` holds ``zoo/`` (the test split of the track's benchmark zoo), ``encoder.safetensors``
(the best checkpoint of the track's `SHIPPED_RUNS` benchmark run) and ``classifier.safetensors`` (the
architecture-agnostic classifier fitted on that run's train embeddings of the seen architectures). ``ship``
refreshes a track from a benchmark.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nerfspace.atomic import atomic_write_bytes, atomic_write_json
from nerfspace.cache import file_hash
from nerfspace.errors import InputError
from nerfspace.evaluation.classify import EmbeddingClassifier
from nerfspace.evaluation.evaluate import EvalConfig, evaluate, evaluate_space
from nerfspace.evaluation.field_features import FIELD_BASELINES, field_embeddings
from nerfspace.evaluation.tables import best_baseline, write_overview
from nerfspace.report.html import write_report
from nerfspace.zoo.build import split_zoo
from nerfspace.zoo.captures import CAPTURE_MODES
from nerfspace.zoo.items import zoo_items

DATA = Path(__file__).parent / "demo_data"
# the benchmark run each track ships: the aligned track's from before the invariant encoder existed
SHIPPED_RUNS = {"aligned": "l_rec_con", "independent": "invariant"}


@dataclass(frozen=True)
class Shipped:
    """One track's shipped data."""

    track: str
    zoo: Path
    encoder: Path
    classifier: Path


def shipped(data: Path | None = None) -> list[Shipped]:
    """The tracks shipped in ``data`` (default `DATA`), in `CAPTURE_MODES` order."""
    data = Path(data or DATA)
    found = [
        Shipped(t, data / t / "zoo", data / t / "encoder.safetensors", data / t / "classifier.safetensors")
        for t in CAPTURE_MODES
        if (data / t).is_dir()
    ]
    if not found:
        raise InputError(f"no shipped demo data in {data}; reinstall nerfspace")
    for s in found:
        missing = [p.name for p in (s.zoo, s.encoder, s.classifier) if not p.exists()]
        if missing:
            raise InputError(f"shipped demo data missing ({', '.join(missing)} in {s.zoo.parent}); reinstall")
    return found


def headline(results: dict) -> dict:
    """One track's part of the ``nerfspace demo --json`` contract (docs/cli.md): fractions in [0, 1]."""
    c, r = results["classification"], results["retrieval"]
    return {
        "classification": {"seen": c["seen"], "unseen": c["unseen"], "per_arch": c["per_arch"]},
        "retrieval": {
            **{f"recall@{k}": r[f"recall@{k}"] for k in (1, 5, 10)},
            "map": r["map"],
        },
        "neighbours": results["neighbours"],
        "arch_identifiability": results["arch_identifiability"],
        "arch_chance": results["arch_chance"],
        "seconds_per_nerf": results["seconds_per_nerf"]["total"],
        "best_baseline": {
            path: {"value": value, "method": method}
            for path, (value, method) in best_baseline(_track(results)).items()
        },
    }


def demo_json(tracks: dict[str, dict], report: Path) -> dict:
    """The whole ``--json`` contract: the first track's headline at the top (the aligned one when shipped),
    every track under ``tracks``."""
    heads = {t: headline(r) for t, r in tracks.items()}
    return {**next(iter(heads.values())), "tracks": heads, "report": str(report)}


def _track(results: dict) -> dict:
    """A demo track's results in the shape of a benchmark track (for the shared tables)."""
    return {"results": {"shipped encoder": results}, "baselines": {"field": results["field_baselines"]}}


def run_demo(
    out: Path, progress: Callable[[int, int], None] | None = None, data: Path | None = None
) -> dict[str, dict]:
    """Evaluate each shipped track's encoder on its test zoo, and the field baselines beside it; writes
    ``out/<track>/report.html``, the overview ``out/report.html`` and ``out/results.json``."""
    tracks = {}
    for s in shipped(data):
        classifier, meta = EmbeddingClassifier.load(s.classifier)
        if meta.get("checkpoint") != file_hash(s.encoder):
            raise InputError(f"{s.classifier}: fitted on another encoder's embeddings than {s.encoder}")
        results, _, _ = evaluate(s.encoder, s.zoo, EvalConfig(), classifier=classifier, progress=progress)
        items = zoo_items(s.zoo)
        # the headline's metrics of every no-learning baseline (architecture mixing only in the benchmark)
        baselines = {m: evaluate_space(field_embeddings(items, m), mixing=False) for m in FIELD_BASELINES}
        results["field_baselines"] = baselines
        write_report(
            Path(out) / s.track, results, title=f"nerfspace demo ({s.track} captures): shipped encoder"
        )
        tracks[s.track] = results
    galleries = {t: r["examples"] for t, r in tracks.items()}
    write_overview(
        Path(out) / "report.html", "nerfspace demo", {t: _track(r) for t, r in tracks.items()}, galleries
    )
    atomic_write_json(Path(out) / "results.json", tracks)
    return tracks


def ship(benchmark: Path, track: str, dest: Path = DATA, run: str | None = None) -> None:
    """Copy a benchmark's test zoo of ``track``, its ``run`` encoder (best checkpoint; default the
    track's `SHIPPED_RUNS` run) and that run's classifier into ``dest/<track>`` (replacing what is there)."""
    run = run or SHIPPED_RUNS[track]
    src, dest = Path(benchmark) / track, Path(dest) / track
    encoder = src / "runs" / run / "checkpoints" / "best.safetensors"
    classifier = src / "reports" / run / "classifier.safetensors"
    for p in (encoder, classifier):
        if not p.exists():
            raise InputError(f"{p}: missing; run the benchmark first")
    if (dest / "zoo").exists():
        shutil.rmtree(dest / "zoo")
    split_zoo(src / "zoo", dest / "zoo", "test")
    atomic_write_bytes(dest / "encoder.safetensors", encoder.read_bytes())
    atomic_write_bytes(dest / "classifier.safetensors", classifier.read_bytes())
