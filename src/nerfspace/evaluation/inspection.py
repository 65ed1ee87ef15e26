"""The inspection protocol on an inspection zoo (`nerfspace.zoo.ZooConfig` with defects): the normal parts
of one architecture (train and val objects) are the reference; every test part (normal or defective) of
the other architectures, each from its own capture, is scored by `KNNAnomaly` on a method's embeddings.
Reported per defect and severity, per architecture: AUROC and average precision (defective parts against
the normal test parts), and the share flagged at the reference's threshold (false alarms on normal parts).

Beside any encoder, `render_ring_features` gives the render-based baseline: views on a ring of evenly
spaced azimuths, made invariant to turns about z by the magnitude of their Fourier transform over the ring.
`map_results` scores every test part by its defect map against its nearest reference normals (by an
encoder's embeddings), with a threshold from the reference normals' own maps (each left out), and checks
each defective part's map peak against the defect's known region (the NeRF's metadata, moved by its
capture).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from nerfspace.cache import file_hash
from nerfspace.defect_map import DefectMap, Shape, defect_map
from nerfspace.embeddings import Embeddings
from nerfspace.errors import InputError
from nerfspace.evaluation.anomaly import AnomalyConfig, KNNAnomaly, threshold_at
from nerfspace.frames import Similarity
from nerfspace.probe import nerf_field
from nerfspace.render import ring_cameras
from nerfspace.zoo.items import Item
from nerfspace.zoo.storage import NeRF, load_nerf

RING_VIEWS = 12
RING_SIZE = 32
HIT_MARGIN = 0.03  # a hit: the map's peak inside the defect's ball grown by this much (about a view pixel)
MASK_FRACTION = 0.5  # the map's defect mask (for IoU): departure at least this fraction of its peak


@dataclass(frozen=True)
class InspectionConfig:
    reference: str = "mlp"  # the architecture of the normal reference parts
    anomaly: AnomalyConfig = AnomalyConfig()


def is_reference(item: Item, cfg: InspectionConfig) -> bool:
    """A normal train or val part of the reference architecture."""
    return item.preset == cfg.reference and item.split != "test" and not item.defect


@torch.no_grad()
def render_ring_features(nerf: NeRF) -> torch.Tensor:
    """|FFT over the ring| of `RING_VIEWS` views of `RING_SIZE` px (1 - image, so the background is 0)."""
    images = 1.0 - nerf.render(ring_cameras(RING_VIEWS, RING_SIZE))
    return torch.fft.rfft(images.double(), dim=0).abs().float().reshape(-1)


def defect_region(nerf: NeRF) -> tuple[torch.Tensor, float]:
    """The ball [centre [3], radius] a defective part's NeRF records, in the NeRF's own frame."""
    region = json.loads(nerf.meta["region"])
    centre, radius = torch.tensor(region["centre"], dtype=torch.float32), float(region["radius"])
    if "capture" in nerf.meta:
        pose = Similarity.from_dict(json.loads(nerf.meta["capture"]))
        centre, radius = pose.apply(centre), radius * pose.scale
    return centre, radius


def localise(part: NeRF, m: DefectMap) -> dict:
    """A defective part's defect map against its recorded region: whether the peak is inside (with
    `HIT_MARGIN`), its distance, and the IoU of the map's mask and the region's points of the map."""
    centre, radius = defect_region(part)
    distance = float((m.peak() - centre).norm())
    truth = (m.points - centre).norm(dim=-1) <= radius
    mask = m.departure >= MASK_FRACTION * m.departure.max()
    iou = float((mask & truth).sum() / (mask | truth).sum().clamp_min(1))
    return {"hit": distance <= radius + HIT_MARGIN, "distance": distance, "iou": iou}


def nerf_shape(nerf: NeRF) -> Shape:
    """A NeRF as the defect map reads it: its field and occupancy grid."""
    return Shape(nerf_field(nerf), nerf.occupancy)


def map_results(
    emb: Embeddings,
    items: list[Item],
    cfg: InspectionConfig,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Score every test part of ``items`` by its defect map against its `AnomalyConfig.k` nearest
    reference normals in ``emb``; the threshold from each reference normal's map against its nearest
    normals of other objects. The protocol's tables, the localisation of every defective part (hit rate
    and IoU per severity and defect) and the seconds per map."""
    rows = _rows(emb, items)
    ref, test = _split(rows, cfg)
    knn = KNNAnomaly(cfg.anomaly).fit(emb.vectors[ref], [rows[i].object for i in ref])
    _, nearest = knn.kneighbors(emb.vectors[test])
    shape = _shapes(lambda i: rows[ref[i]].file)
    start, total = time.perf_counter(), len(ref) + len(test)
    threshold = map_threshold(knn, shape, lambda done: progress and progress(done, total))
    done, scores, located = len(ref), [], []
    for i, near in zip(test, nearest, strict=True):
        nerf = load_nerf(rows[i].file)
        m = defect_map(nerf_shape(nerf), [shape(j) for j in near])
        scores.append(m.score())
        if rows[i].defect:
            it = rows[i]
            located.append(
                {"object": it.object, "preset": it.preset, "defect": it.defect, "severity": it.severity}
                | localise(nerf, m)
            )
        done += 1
        if progress:
            progress(done, total)
    seconds = (time.perf_counter() - start) / total
    out = _tables([rows[i] for i in test], np.array(scores), threshold, cfg, len(ref))
    return out | {"localisation": _localisation_tables(located), "seconds_per_map": seconds}


def map_threshold(
    knn: KNNAnomaly, shape: Callable[[int], Shape], done: Callable[[int], None] | None = None
) -> float:
    """The defect-map score above which the model's false-alarm share of its normals lie, each normal
    (``shape(i)``, row i of the fitted normals) mapped against its nearest normals of other objects."""
    scores = []
    for i, near in enumerate(knn.left_out):
        scores.append(defect_map(shape(i), [shape(j) for j in near]).score())
        if done:
            done(i + 1)
    return threshold_at(np.array(scores), knn.config.false_alarm)


def fit_map(knn: KNNAnomaly, files: list[Path], done: Callable[[int], None] | None = None) -> dict:
    """The map part of an anomaly model fitted on the NeRF ``files`` of its normals (row order): the
    threshold of `map_threshold` and each normal's sha256, by which `find_normals` finds its file again."""
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise InputError(f"{missing[0]}: scoring by defect maps needs the normals' NeRF files")
    shapes = _shapes(lambda i: files[i])
    return {"threshold": map_threshold(knn, shapes, done), "normals": [file_hash(f) for f in files]}


def check_map(fitted: object, normals: int, source: Path) -> dict:
    """The map part of a stored anomaly model, checked: a finite threshold and one sha256 per normal."""
    ok = (
        isinstance(fitted, dict)
        and isinstance(fitted.get("threshold"), float)
        and np.isfinite(fitted["threshold"])
        and isinstance(fitted.get("normals"), list)
        and len(fitted["normals"]) == normals
        and all(isinstance(d, str) and len(d) == 64 for d in fitted["normals"])
    )
    if not ok:
        raise InputError(f"{source}: its defect-map part needs a finite threshold and a sha256 per normal")
    return fitted


def find_normals(fitted: dict, files: list[Path]) -> list[Path]:
    """The NeRF file of each of a map model's normals (row order), found among ``files`` by sha256."""
    by_digest = {file_hash(f): Path(f) for f in files}
    lost = [d for d in fitted["normals"] if d not in by_digest]
    if lost:
        raise InputError(
            f"{len(lost)} of the model's {len(fitted['normals'])} normals are not among the files given with"
            f" --normals (the NeRF files it was fitted on; sha256 {lost[0][:12]}...)"
        )
    return [by_digest[d] for d in fitted["normals"]]


def score_maps(
    knn: KNNAnomaly,
    normals: list[Path],
    x: torch.Tensor,
    parts: list[Path],
    done: Callable[[int], None] | None = None,
) -> list[DefectMap]:
    """Each part's defect map (its embedding a row of ``x``, its NeRF file in ``parts``) against its
    nearest normals (their NeRF files ``normals``, in the model's row order)."""
    _, nearest = knn.kneighbors(x)
    shape = _shapes(lambda i: normals[i])
    maps = []
    for i, (file, near) in enumerate(zip(parts, nearest, strict=True)):
        maps.append(defect_map(nerf_shape(load_nerf(file)), [shape(j) for j in near]))
        if done:
            done(i + 1)
    return maps


def _shapes(file: Callable[[int], Path]) -> Callable[[int], Shape]:
    """Normal i's shape, read from ``file(i)`` once however many parts it is near."""
    cache: dict[int, Shape] = {}

    def shape(i: int) -> Shape:
        if i not in cache:
            cache[i] = nerf_shape(load_nerf(file(i)))
        return cache[i]

    return shape


def _localisation_tables(rows: list[dict]) -> dict:
    """Hit rate and mean IoU per severity and defect, and every part's result."""
    table: dict[str, dict] = {}
    for key in sorted({(r["severity"], r["defect"]) for r in rows}):
        cell = [r for r in rows if (r["severity"], r["defect"]) == key]
        table.setdefault(f"{key[0]:g}", {})[key[1]] = {
            "hit_rate": float(np.mean([r["hit"] for r in cell])),
            "iou": float(np.mean([r["iou"] for r in cell])),
            "parts": len(cell),
        }
    summary = {
        s: {
            "hit_rate": float(np.mean([r["hit"] for r in rows if f"{r['severity']:g}" == s])),
            "iou": float(np.mean([r["iou"] for r in rows if f"{r['severity']:g}" == s])),
        }
        for s in table
    }
    return {
        "severity": summary,
        "per_defect": table,
        "parts": rows,
        "hit_margin": HIT_MARGIN,
        "mask_fraction": MASK_FRACTION,
    }


def _auc(scores: np.ndarray, positive: np.ndarray) -> tuple[float | None, float | None]:
    """AUROC and average precision of ``scores`` for ``positive`` (None without both classes)."""
    if positive.all() or not positive.any():
        return None, None
    return float(roc_auc_score(positive, scores)), float(average_precision_score(positive, scores))


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _rows(emb: Embeddings, items: list[Item]) -> list[Item]:
    """The zoo item of every row of ``emb`` (matched by file)."""
    by_file = {str(it.file): it for it in items}
    rows = [by_file.get(d["file"]) for d in emb.items]
    if any(r is None for r in rows):
        raise InputError("embeddings of NeRFs that are not in the inspection zoo")
    return rows


def _split(rows: list[Item], cfg: InspectionConfig) -> tuple[list[int], list[int]]:
    """Rows of the reference normals and of the test parts outside the reference architecture."""
    ref = [i for i, it in enumerate(rows) if is_reference(it, cfg)]
    test = [i for i, it in enumerate(rows) if it.split == "test" and it.preset != cfg.reference]
    if not test:
        raise InputError(f"no test part outside the reference architecture {cfg.reference!r}")
    return ref, test


def inspection_results(emb: Embeddings, items: list[Item], cfg: InspectionConfig | None = None) -> dict:
    """Score every test part of ``items`` (the rows of ``emb``, matched by file) against the reference
    normals; the tables of the protocol and every test part's score."""
    cfg = cfg or InspectionConfig()
    rows = _rows(emb, items)
    ref, test = _split(rows, cfg)
    model = KNNAnomaly(cfg.anomaly).fit(emb.vectors[ref], [rows[i].object for i in ref])
    scores = model.score_samples(emb.vectors[test])
    return _tables([rows[i] for i in test], scores, model.threshold, cfg, len(ref))


def _tables(
    parts: list[Item], scores: np.ndarray, threshold: float, cfg: InspectionConfig, reference: int
) -> dict:
    """The protocol's tables for test ``parts`` scored ``scores``, flagged above ``threshold``."""
    defect = np.array([it.defect or "" for it in parts])
    severity = np.array([it.severity for it in parts])
    preset = np.array([it.preset for it in parts])
    normal = defect == ""
    flagged = scores > threshold

    everywhere = np.ones_like(normal)

    def auc(positive: np.ndarray, within: np.ndarray = everywhere) -> tuple[float | None, float | None]:
        keep = within & (positive | normal)
        return _auc(scores[keep], positive[keep])

    per_defect, per_arch, summary = {}, {}, {}
    presets = sorted(set(preset.tolist()))
    for s in sorted(set(severity[~normal].tolist())):
        masks = {d: (severity == s) & (defect == d) for d in sorted(set(defect[severity == s].tolist()))}
        cells = {}
        for d, m in masks.items():
            auroc, ap = auc(m)
            cells[d] = {"auroc": auroc, "ap": ap, "flagged": float(flagged[m].mean())}
        per_defect[f"{s:g}"] = cells
        per_arch[f"{s:g}"] = {p: _mean([auc(m, preset == p)[0] for m in masks.values()]) for p in presets}
        summary[f"{s:g}"] = {
            "auroc": _mean([c["auroc"] for c in cells.values()]),
            "ap": _mean([c["ap"] for c in cells.values()]),
            "flagged": float(flagged[severity == s].mean()),
        }
    return {
        "config": asdict(cfg),
        "threshold": threshold,
        "reference_parts": reference,
        "test_parts": {"normal": int(normal.sum()), "defective": int((~normal).sum())},
        "false_alarm": float(flagged[normal].mean()) if normal.any() else None,
        "false_alarm_per_arch": {p: float(flagged[normal & (preset == p)].mean()) for p in presets},
        "severity": summary,
        "per_defect": per_defect,
        "per_arch": per_arch,
        "scores": [
            {
                "object": it.object,
                "preset": it.preset,
                "defect": it.defect,
                "severity": it.severity,
                "score": float(v),
            }
            for it, v in zip(parts, scores, strict=True)
        ],
    }
