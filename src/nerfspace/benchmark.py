"""The benchmark, from nothing, on two tracks: ``aligned`` captures (the paper's protocol) and
``independent`` ones (every NeRF its own capture). Per track: build the zoo, train the encoder with L_R,
L_C and L_R+C (and the paper's recipe: its encoder settings with L_R+C; and L_R+C with the field encoder
alone), evaluate each run, run the
no-learning field baselines, render-then-classify and raw weights on the same objects; summarise with
the costs. Every stage resumes: a rerun skips what is done.

Layout of ``OUT``: ``<track>/zoo/``, ``<track>/runs/<name>/``, ``<track>/reports/<name>/`` (report.html,
results.json), ``<track>/baselines/*.json``, ``timings.json`` (wall seconds per stage, summed over
invocations; the largest peak memory), ``benchmark.json`` (the summary).
"""

from __future__ import annotations

import csv
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from nerfspace.archs import SEEN
from nerfspace.atomic import atomic_write_json
from nerfspace.cache import file_hash
from nerfspace.evaluation.baselines import raw_weights_knn, render_then_classify
from nerfspace.evaluation.evaluate import EvalConfig, evaluate, evaluate_embeddings
from nerfspace.evaluation.field_features import FIELD_BASELINES, field_embeddings
from nerfspace.evaluation.tables import write_overview
from nerfspace.executors import Executor
from nerfspace.report.html import write_report
from nerfspace.training.trainer import train, train_config
from nerfspace.zoo import ZooConfig, build_zoo
from nerfspace.zoo.captures import CAPTURE_MODES, CaptureConfig
from nerfspace.zoo.fitting import FitConfig, fit_config
from nerfspace.zoo.items import Item, zoo_items

# name -> (loss, encoder preset, epochs: None for the benchmark's)
RUNS = {
    "l_rec_con": ("l_rec_con", "small", None),
    "l_rec": ("l_rec", "small", None),
    "l_con": ("l_con", "small", None),
    "paper_recipe": ("l_rec_con", "paper", None),
    "field_only": ("l_rec_con", "field", None),  # the small preset without its GMN part: what the GMN adds
    # capture-invariant features, object and category parts: 32 objects a step, 6 steps an epoch
    "invariant": ("l_con", "invariant", 250),
}


TRACKS = CAPTURE_MODES  # aligned: the paper's protocol; independent: every NeRF its own capture


@dataclass(frozen=True)
class BenchmarkConfig:
    objects_per_class: int = 20
    fit_steps: int = 400
    epochs: int = 30
    seed: int = 0
    workers: int = 2
    runs: tuple[str, ...] = tuple(RUNS)
    tracks: tuple[str, ...] = TRACKS


def zoo_config(cfg: BenchmarkConfig, track: str) -> ZooConfig:
    """The benchmark zoo of one track: the protocol's objects and architectures, the track's captures."""
    return ZooConfig(objects_per_class=cfg.objects_per_class, seed=cfg.seed, captures=CaptureConfig(track))


def benchmark_fit_config(cfg: BenchmarkConfig) -> FitConfig:
    return replace(fit_config("photometric", "small"), steps=cfg.fit_steps)


class _Timings:
    """Wall seconds per stage, summed over invocations (a resumed benchmark adds to them), and the
    peak memory over invocations."""

    def __init__(self, path: Path):
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def peak_memory_mb(self) -> float:
        """The largest peak resident memory of any invocation so far, this one included (MB)."""
        now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        mb = max(self.data.get("peak_memory_mb", 0.0), now)
        self.data["peak_memory_mb"] = mb
        atomic_write_json(self.path, self.data)
        return mb

    def add(self, stage: str, seconds: float, **counts: int) -> None:
        entry = self.data.setdefault(stage, {"seconds": 0.0})
        entry["seconds"] += seconds
        for k, v in counts.items():
            entry[k] = entry.get(k, 0) + v
        atomic_write_json(self.path, self.data)


def _step_seconds(run: Path) -> float:
    with open(run / "log.csv") as f:
        return statistics.median(float(r["seconds"]) for r in csv.DictReader(f))


def _cached(path: Path, compute: Callable[[], dict], valid: Callable[[dict], bool] = lambda r: True) -> dict:
    """The JSON result stored at ``path`` if it is there and ``valid``, else ``compute()`` stored there."""
    if path.exists():
        result = json.loads(path.read_text())
        if valid(result):
            return result
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
    return result


def _build_zoo(out: Path, cfg: BenchmarkConfig, track: str, timings: _Timings, say) -> dict:
    zoo = out / track / "zoo"
    say(f"{track} zoo: 13 categories x {cfg.objects_per_class} objects, {cfg.fit_steps} steps -> {zoo}")
    before = len(list(zoo.glob("nerfs/*/*.safetensors")))
    t0 = time.perf_counter()
    manifest = build_zoo(
        zoo, zoo_config(cfg, track), Executor(workers=cfg.workers), fit_cfg=benchmark_fit_config(cfg)
    )
    fitted = len(manifest["nerfs"]) - before
    if fitted:
        timings.add(f"{track}/zoo", time.perf_counter() - t0, nerfs=fitted)
    return manifest


def _train_and_evaluate(
    out: Path, name: str, cfg: BenchmarkConfig, timings: _Timings, say
) -> tuple[dict, dict]:
    """One training of a track (resumed) and its evaluation (reused while its checkpoint is unchanged)."""
    loss, encoder, epochs = RUNS[name]
    epochs = epochs or cfg.epochs
    zoo, run, report = out / "zoo", out / "runs" / name, out / "reports" / name
    tc = train_config(loss, "small", encoder, epochs=epochs, seed=cfg.seed)
    say(f"train {out.name} {name}: loss {loss}, {encoder} encoder, {epochs} epochs -> {run}")
    t0 = time.perf_counter()
    summary = train(zoo, run, tc, resume=(run / "checkpoints" / "resume.pt").exists())
    if summary["history"]:
        timings.add(f"{out.name}/train_{name}", time.perf_counter() - t0, epochs=len(summary["history"]))
    info = {
        "loss": loss,
        "encoder": encoder,
        "epochs": epochs,
        "best_epoch": summary["best"]["epoch"],
        "step_seconds": _step_seconds(run),
    }

    def compute() -> dict:
        say(f"evaluate {out.name} {name}")
        res, classifier, _ = evaluate(run, zoo, EvalConfig(seed=cfg.seed))
        write_report(report, res, title=f"nerfspace benchmark ({out.name} captures): {name}")
        classifier.save(report / "classifier.safetensors", {"checkpoint": res["checkpoint"]})
        return res

    best = file_hash(run / "checkpoints" / "best.safetensors")
    res = _cached(report / "results.json", compute, lambda r: r.get("checkpoint") == best)
    return info, res


def _field_baseline(items: list[Item], method: str, seed: int) -> dict:
    """A no-learning baseline evaluated like an encoder: its vectors through every table of the protocol."""
    t0 = time.perf_counter()
    emb = field_embeddings(items, method)
    seconds = (time.perf_counter() - t0) / len(items)
    res, _ = evaluate_embeddings(emb, EvalConfig(seed=seed))
    res["seconds_per_nerf"] = {"features": seconds, "total": seconds}
    return res


def _run_track(
    out: Path, manifest: dict, cfg: BenchmarkConfig, timings: _Timings, say
) -> tuple[dict, list[dict]]:
    """Trainings, evaluations and baselines of one track (``out`` holds its zoo): its summary, and the
    retrieval examples of its L_R+C run (if trained) for the overview."""
    runs, results = {}, {}
    for name in cfg.runs:
        runs[name], results[name] = _train_and_evaluate(out, name, cfg, timings, say)
    items = zoo_items(out / "zoo")
    base = out / "baselines"
    field = {}
    for method in FIELD_BASELINES:
        say(f"baseline {out.name}: {method}")
        field[method] = _headline(
            _cached(base / f"{method}.json", lambda m=method: _field_baseline(items, m, cfg.seed))
        )
    say(f"baseline {out.name}: render-then-classify")
    rtc = _cached(base / "render_then_classify.json", lambda: render_then_classify(items, seed=cfg.seed))
    say(f"baseline {out.name}: raw weights (PCA + kNN)")
    raw = _cached(base / "raw_weights_knn.json", lambda: raw_weights_knn(items))
    summary = {
        "zoo": {
            "objects": len(manifest["objects"]),
            "nerfs": len(manifest["nerfs"]),
            "splits": {
                s: sum(o["split"] == s for o in manifest["objects"]) for s in ("train", "val", "test")
            },
            "fit_steps": cfg.fit_steps,
            "captures": manifest["config"].get("captures", {"mode": "aligned"}),
        },
        "runs": runs,
        "results": {n: _headline(r) for n, r in results.items()},
        "baselines": {"render_then_classify": rtc, "raw_weights_knn": raw, "field": field},
    }
    return summary, results.get("l_rec_con", {}).get("examples", [])


def run_benchmark(
    out: Path, cfg: BenchmarkConfig | None = None, say: Callable[[str], None] = lambda s: None
) -> dict:
    """Run (or resume) the whole benchmark into ``out``: first every track's zoo (the long stage), then
    per track the trainings, evaluations and baselines. Returns the summary (also ``out/benchmark.json``;
    the overview page ``out/report.html``)."""
    cfg = cfg or BenchmarkConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings = _Timings(out / "timings.json")
    manifests = {track: _build_zoo(out, cfg, track, timings, say) for track in cfg.tracks}
    done = {track: _run_track(out / track, manifests[track], cfg, timings, say) for track in cfg.tracks}
    tracks = {track: summary for track, (summary, _) in done.items()}
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "config": asdict(cfg),
        "tracks": tracks,
        "timings": timings.data,
        "peak_memory_mb": timings.peak_memory_mb(),
        "machine": {
            "cpu": platform.machine(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "seen": list(SEEN),
    }
    atomic_write_json(out / "benchmark.json", summary)
    galleries = {track: examples for track, (_, examples) in done.items()}
    write_overview(out / "report.html", f"nerfspace benchmark, seed {cfg.seed}", tracks, galleries)
    return summary


def _headline(res: dict) -> dict:
    """What the summary keeps of one method's results (the full results stay in its report folder)."""
    c, r = res["classification"], res["retrieval"]
    return {
        "classification": {k: c[k] for k in ("seen", "unseen", "per_arch", "per_arch_classifier")},
        "retrieval": {k: v for k, v in r.items() if k != "pairs"},
        "neighbours": res["neighbours"],
        "arch_identifiability": res["arch_identifiability"],
        "arch_chance": res["arch_chance"],
        "seconds_per_nerf": res["seconds_per_nerf"],
    }
