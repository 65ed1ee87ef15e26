"""The benchmark, from nothing: build the benchmark zoo, train the encoder with L_R, L_C and L_R+C
(and the paper's recipe: its encoder settings with L_R+C), evaluate each run, run the baselines on
the same objects, and summarise with the costs. Every stage resumes: a rerun skips what is done.

Layout of ``OUT``: ``zoo/``, ``runs/<name>/``, ``reports/<name>/`` (report.html, results.json),
``timings.json`` (wall seconds per stage, summed over invocations; the largest peak memory),
``benchmark.json`` (the summary).
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
from nerfspace.evaluation.baselines import raw_weights_knn, render_then_classify
from nerfspace.evaluation.evaluate import EvalConfig, evaluate
from nerfspace.report.html import write_report
from nerfspace.training.data import zoo_items
from nerfspace.training.trainer import train, train_config
from nerfspace.zoo import ZooConfig, build_zoo
from nerfspace.zoo.fitting import fit_config

# name -> (loss, encoder preset)
RUNS = {
    "l_rec_con": ("l_rec_con", "small"),
    "l_rec": ("l_rec", "small"),
    "l_con": ("l_con", "small"),
    "paper_recipe": ("l_rec_con", "paper"),
}


@dataclass(frozen=True)
class BenchmarkConfig:
    objects_per_class: int = 20
    fit_steps: int = 400
    epochs: int = 30
    seed: int = 0
    workers: int = 2
    runs: tuple[str, ...] = tuple(RUNS)


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


def run_benchmark(
    out: Path, cfg: BenchmarkConfig | None = None, say: Callable[[str], None] = lambda s: None
) -> dict:
    """Run (or resume) the whole benchmark into ``out``; returns the summary (also ``out/benchmark.json``)."""
    cfg = cfg or BenchmarkConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings = _Timings(out / "timings.json")
    zoo = out / "zoo"
    zoo_cfg = ZooConfig(objects_per_class=cfg.objects_per_class, seed=cfg.seed)
    fit_cfg = replace(fit_config("photometric", "small"), steps=cfg.fit_steps)

    say(f"zoo: 13 categories x {cfg.objects_per_class} objects, {cfg.fit_steps} fitting steps -> {zoo}")
    before = len(list(zoo.glob("nerfs/*/*.safetensors")))
    t0 = time.perf_counter()
    manifest = build_zoo(zoo, zoo_cfg, workers=cfg.workers, fit_cfg=fit_cfg)
    fitted = len(manifest["nerfs"]) - before
    if fitted:
        timings.add("zoo", time.perf_counter() - t0, nerfs=fitted)

    runs, results = {}, {}
    for name in cfg.runs:
        loss, encoder = RUNS[name]
        run = out / "runs" / name
        tc = train_config(loss, "small", encoder, epochs=cfg.epochs, seed=cfg.seed)
        say(f"train {name}: loss {loss}, {encoder} encoder, {cfg.epochs} epochs -> {run}")
        t0 = time.perf_counter()
        summary = train(zoo, run, tc, resume=(run / "checkpoints" / "resume.pt").exists())
        if summary["history"]:
            timings.add(f"train_{name}", time.perf_counter() - t0, epochs=len(summary["history"]))
        runs[name] = {
            "loss": loss,
            "encoder": encoder,
            "best_epoch": summary["best"]["epoch"],
            "step_seconds": _step_seconds(run),
        }
        say(f"evaluate {name}")
        res, classifier, _ = evaluate(run, zoo, EvalConfig(seed=cfg.seed))
        report = out / "reports" / name
        write_report(report, res, title=f"nerfspace benchmark: {name}")
        atomic_write_json(report / "results.json", res)
        classifier.save(report / "classifier.safetensors", {"checkpoint": res["checkpoint"]})
        results[name] = res

    items = zoo_items(zoo)
    say("baseline: render-then-classify")
    rtc = render_then_classify(items, seed=cfg.seed)
    say("baseline: raw weights (PCA + kNN)")
    raw = raw_weights_knn(items)
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "config": asdict(cfg),
        "zoo": {
            "objects": len(manifest["objects"]),
            "nerfs": len(manifest["nerfs"]),
            "splits": {
                s: sum(o["split"] == s for o in manifest["objects"]) for s in ("train", "val", "test")
            },
            "fit_steps": cfg.fit_steps,
        },
        "runs": runs,
        "results": {n: _headline(r) for n, r in results.items()},
        "baselines": {"render_then_classify": rtc, "raw_weights_knn": raw},
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
    return summary


def _headline(res: dict) -> dict:
    """What the summary keeps of one run's results (the full results stay in its report folder)."""
    c, r = res["classification"], res["retrieval"]
    return {
        "classification": {k: c[k] for k in ("seen", "unseen", "per_arch", "per_arch_classifier")},
        "retrieval": {k: v for k, v in r.items() if k != "pairs"},
        "arch_identifiability": res["arch_identifiability"],
        "arch_chance": res["arch_chance"],
        "seconds_per_nerf": res["seconds_per_nerf"],
    }
