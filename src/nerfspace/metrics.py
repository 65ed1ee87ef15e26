"""Retrieval metrics on embeddings (cosine): instance recall@k for every architecture pair, class mAP."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence

import numpy as np
import torch

from nerfspace.index import EmbeddingIndex, unit


def pair_recall(
    vectors: torch.Tensor, objects: Sequence[Hashable], presets: Sequence[str], ks: Sequence[int] = (1, 5, 10)
) -> dict[tuple[str, str], dict[int, float]]:
    """Instance recall@k for every ordered architecture pair (A, B), A != B: queries are the A
    embeddings, the gallery the B embeddings; a query hits when its object is among the k nearest.
    Only queries whose object is in the gallery count. k is capped at the gallery size."""
    objects, presets = list(objects), list(presets)
    out = {}
    for a, b in itertools.permutations(sorted(set(presets)), 2):
        gallery = [i for i, p in enumerate(presets) if p == b]
        gallery_objects = np.array([objects[i] for i in gallery], dtype=object)
        present = set(gallery_objects)
        queries = [i for i, p in enumerate(presets) if p == a and objects[i] in present]
        if not queries:
            continue
        kmax = min(max(ks), len(gallery))
        _, rows = EmbeddingIndex.build(vectors[gallery], "Flat").search(vectors[queries], kmax)
        hit = gallery_objects[rows] == np.array([objects[i] for i in queries], dtype=object)[:, None]
        out[(a, b)] = {k: float(hit[:, : min(k, kmax)].any(1).mean()) for k in ks}
    return out


def mean_recall(
    recall: dict[tuple[str, str], dict[int, float]], k: int, queries: set[str], gallery: set[str]
) -> float | None:
    """Mean recall@k over the pairs whose query architecture is in ``queries`` and gallery in ``gallery``."""
    values = [r[k] for (a, b), r in recall.items() if a in queries and b in gallery]
    return float(np.mean(values)) if values else None


def class_map(vectors: torch.Tensor, categories: Sequence[str]) -> float:
    """Class-level mean average precision: every embedding queries all others (any architecture),
    the relevant ones are those of its category."""
    x = unit(vectors)
    cats = np.array(categories)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    aps = []
    for i in range(len(x)):
        order = np.argsort(-sim[i], kind="stable")[:-1]  # drop itself (ranked last)
        rel = cats[order] == cats[i]
        if rel.any():
            precision = np.cumsum(rel) / np.arange(1, len(rel) + 1)
            aps.append(float((precision * rel).sum() / rel.sum()))
    return float(np.mean(aps)) if aps else 0.0
