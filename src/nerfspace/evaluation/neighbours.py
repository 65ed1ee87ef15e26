"""Metrics that no trained head can hide behind: they read the embedding space directly (cosine).

- 1-NN classification: a test NeRF takes the category of its nearest test NeRF of another object in a
  seen architecture;
- class mAP over other objects: a test NeRF ranks every test NeRF of another object, relevant if of its
  category (its own object, in other architectures, is left out: finding it is retrieval, not class);
- k-shot: k labelled objects per category (from the train split when it has k per category, else from the
  test split, those objects then left out of the queries), every category the mean of its labelled
  NeRFs in the seen architectures; a test NeRF takes the nearest mean; mean over draws.
Accuracies are reported for queries in seen and in unseen architectures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from nerfspace.archs import SEEN
from nerfspace.evaluation.classify import NearestClassMean
from nerfspace.index import unit


def _by_arch(correct: np.ndarray, presets: np.ndarray) -> dict[str, float | None]:
    seen = np.isin(presets, SEEN)
    return {
        "seen": float(correct[seen].mean()) if seen.any() else None,
        "unseen": float(correct[~seen].mean()) if (~seen).any() else None,
    }


def nearest_neighbour(vectors: torch.Tensor, items: Sequence[dict]) -> dict[str, float | None]:
    """1-NN accuracy of the test NeRFs against the other test objects' NeRFs in the seen architectures."""
    test = [i for i, it in enumerate(items) if it["split"] == "test"]
    gallery = [i for i in test if items[i]["preset"] in SEEN]
    x = unit(vectors, np.float64)
    sim = x[test] @ x[gallery].T
    obj = np.array([items[i]["object"] for i in test])
    sim[obj[:, None] == np.array([items[i]["object"] for i in gallery])[None]] = -np.inf
    nearest = np.array(gallery)[sim.argmax(1)]
    cats = np.array([it["category"] for it in items])
    return _by_arch(cats[nearest] == cats[test], np.array([items[i]["preset"] for i in test]))


def other_object_map(vectors: torch.Tensor, items: Sequence[dict]) -> float:
    """Class mAP of the test NeRFs ranking the test NeRFs of the other objects."""
    test = [i for i, it in enumerate(items) if it["split"] == "test"]
    x = unit(vectors[test], np.float64)
    cats = np.array([items[i]["category"] for i in test])
    obj = np.array([items[i]["object"] for i in test])
    sim = x @ x.T
    aps = []
    for q in range(len(test)):
        keep = obj != obj[q]
        order = np.argsort(-sim[q, keep], kind="stable")
        rel = cats[keep][order] == cats[q]
        if rel.any():
            precision = np.cumsum(rel) / np.arange(1, len(rel) + 1)
            aps.append(float((precision * rel).sum() / rel.sum()))
    return float(np.mean(aps)) if aps else 0.0


def k_shot(
    vectors: torch.Tensor, items: Sequence[dict], k: int, draws: int = 10, seed: int = 0
) -> dict[str, float | None] | None:
    """Nearest-class-mean accuracy with ``k`` labelled objects per category, mean over ``draws`` draws
    (None when some category has too few objects)."""
    x = unit(vectors, np.float64)
    cats = sorted({it["category"] for it in items})

    def objects(split: str) -> dict[str, list[str]]:
        pool: dict[str, list[str]] = {c: [] for c in cats}
        for it in items:
            if it["split"] == split and it["preset"] in SEEN and it["object"] not in pool[it["category"]]:
                pool[it["category"]].append(it["object"])
        return pool

    pool = objects("train")
    from_test = min(map(len, pool.values())) < k
    if from_test:
        pool = objects("test")
        if min(map(len, pool.values())) < k + 1:  # at least one object left to query per category
            return None
    rng = np.random.default_rng(seed)
    test = [i for i, it in enumerate(items) if it["split"] == "test"]
    presets = np.array([items[i]["preset"] for i in test])
    truth = np.array([cats.index(items[i]["category"]) for i in test])
    obj = np.array([it["object"] for it in items])
    seen = np.array([it["preset"] in SEEN for it in items])
    scores: dict[str, list[float]] = {"seen": [], "unseen": []}
    for _ in range(draws):
        shots = {c: set(rng.choice(sorted(pool[c]), k, replace=False)) for c in cats}
        labelled = {o for s in shots.values() for o in s}
        support = np.isin(obj, list(labelled)) & seen
        clf = NearestClassMean().fit(x[support], [items[i]["category"] for i in np.flatnonzero(support)])
        pred = np.array([cats.index(c) for c in clf.predict(x[test])])
        keep = np.array([not (from_test and items[i]["object"] in labelled) for i in test])
        for key, value in _by_arch(pred[keep] == truth[keep], presets[keep]).items():
            if value is not None:
                scores[key].append(value)
    return {key: float(np.mean(v)) if v else None for key, v in scores.items()}


def neighbour_metrics(vectors: torch.Tensor, items: Sequence[dict], seed: int = 0) -> dict:
    """Every metric of this module: ``1nn``, ``map_other_objects``, ``k_shot`` {"1": ..., "5": ...}."""
    return {
        "1nn": nearest_neighbour(vectors, items),
        "map_other_objects": other_object_map(vectors, items),
        "k_shot": {str(k): k_shot(vectors, items, k, seed=seed) for k in (1, 5)},
    }
