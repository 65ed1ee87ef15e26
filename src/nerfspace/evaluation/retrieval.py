"""Retrieval for users: indexes of stored embeddings (a file or a shard folder) built with any FAISS
factory string and tuned to a recall of exact search, stored galleries, the nearest NeRFs to a query NeRF
file (`nerfspace.index` holds the index itself)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from nerfspace.embeddings import SHARD_LIST, StoredEmbeddings, open_embeddings
from nerfspace.errors import InputError
from nerfspace.index import INDEX_SUFFIX, EmbeddingIndex, default_factory, index_path, unit
from nerfspace.inference import Encoder

TRAIN_ROWS = 100_000  # rows an index is trained on (at least 40 per IVF list)
RECALL_K = 10
PLATEAU = 0.005  # recall gained over two doublings of the knob below which tuning stops


@dataclass(frozen=True)
class IndexConfig:
    factory: str | None = None  # a FAISS factory string; None: `default_factory` of the gallery size
    target_recall: float = 0.95  # the search knob is raised until recall@10 of exact search reaches this
    queries: int = 1000  # gallery rows drawn as queries to measure recall (each left out of its own list)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.target_recall <= 1:
            raise InputError(f"--target-recall must be in (0, 1], got {self.target_recall}")
        if self.queries < 1:
            raise InputError(f"--queries must be at least 1, got {self.queries}")


@dataclass(frozen=True)
class IndexReport:
    factory: str
    rows: int
    dim: int
    trained_on: int  # rows (0: the index needs no training)
    parameter: str | None  # the search knob tuned, or None
    value: int | None
    recall: float  # recall@10 of exact search on `queries` gallery rows
    queries: int
    seconds: float  # build, training and tuning included
    bytes: int = 0  # the index file's size, once saved

    def to_dict(self) -> dict:
        return asdict(self)


def build_index(
    stored: StoredEmbeddings, cfg: IndexConfig = IndexConfig()
) -> tuple[EmbeddingIndex, IndexReport]:
    """Index stored embeddings one shard at a time: train on a seeded sample, add every shard, then raise
    the search knob (powers of two) until recall@10 of exact search on seeded gallery rows reaches the
    target (`_tune`: or the smallest value where recall stops rising)."""
    start = time.perf_counter()
    n, rng = len(stored), np.random.default_rng(cfg.seed)
    factory = cfg.factory or default_factory(n)
    index = EmbeddingIndex.create(stored.dim, factory)
    trained_on = 0
    if not index.index.is_trained:
        trained_on = min(n, max(TRAIN_ROWS, 40 * (index.ivf_lists or 0)))
        index.train(stored.vectors(np.sort(rng.choice(n, trained_on, replace=False))))
    for _, emb in stored.blocks():
        index.add(emb.vectors)
    rows = np.sort(rng.choice(n, min(cfg.queries, n), replace=False))
    queries = stored.vectors(rows)
    k = min(RECALL_K, n - 1)
    truth = _without_self(exact_search(stored, queries, k + 1)[1], rows, k) if k else None
    recall, value = 1.0, None
    if truth is not None:
        value, recall = _tune(
            index,
            lambda: _recall(_without_self(index.search(queries, k + 1)[1], rows, k), truth),
            cfg.target_recall,
        )
    report = IndexReport(
        factory=factory,
        rows=n,
        dim=stored.dim,
        trained_on=trained_on,
        parameter=index.search_parameter,
        value=value,
        recall=recall,
        queries=len(rows),
        seconds=time.perf_counter() - start,
    )
    return index, report


def exact_search(stored: StoredEmbeddings, queries: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine top-``k`` (scores, rows) of ``queries`` over stored embeddings, one shard at a time."""
    q = torch.from_numpy(unit(queries))
    best_s = torch.full((len(q), k), -torch.inf)
    best_r = torch.full((len(q), k), -1, dtype=torch.long)
    for shard, emb in stored.blocks():
        s, r = (q @ torch.from_numpy(unit(emb.vectors)).T).topk(min(k, shard.rows), dim=1)
        s, pick = torch.cat([best_s, s], 1).topk(k, dim=1)
        best_s, best_r = s, torch.cat([best_r, r + shard.offset], 1).gather(1, pick)
    return best_s.numpy(), best_r.numpy()


def _tune(index: EmbeddingIndex, recall: Callable[[], float], target: float) -> tuple[int | None, float]:
    """Raise the index's search knob until ``recall()`` reaches ``target``; where it cannot (compressed
    codes), stop once recall stops rising (`PLATEAU` over two steps) and keep the smallest value within
    `PLATEAU` of the best: a full scan that finds no more is only slower. The value set and its recall."""
    tried: list[tuple[int | None, float]] = []
    for value in _knob_values(index):
        if value is not None:
            index.set_search_parameter(value)
        tried.append((value, recall()))
        if tried[-1][1] >= target:
            return tried[-1]
        if len(tried) > 2 and tried[-1][1] - tried[-3][1] < PLATEAU:
            break
    best = max(r for _, r in tried)
    value, found = next((v, r) for v, r in tried if r >= best - PLATEAU)
    if value is not None:
        index.set_search_parameter(value)
    return value, found


def _knob_values(index: EmbeddingIndex) -> list[int | None]:
    if index.search_parameter == "nprobe":
        return sorted({2**i for i in range(int(np.log2(index.ivf_lists)) + 1)} | {index.ivf_lists})
    if index.search_parameter == "efSearch":
        return [2**i for i in range(4, 13)]
    return [None]


def _without_self(rows: np.ndarray, own: np.ndarray, k: int) -> list[list[int]]:
    """Each query's ``k`` best rows other than its own row (fewer where the index found fewer)."""
    return [[r for r in found if r not in (q, -1)][:k] for found, q in zip(rows, own, strict=True)]


def _recall(found: list[list[int]], truth: list[list[int]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def build_index_file(embeddings: Path, cfg: IndexConfig = IndexConfig()) -> tuple[Path, IndexReport]:
    """Build the index of an embeddings file or shard folder and store it with them; the index path and
    the build's report."""
    stored = open_embeddings(embeddings)
    index, report = build_index(stored, cfg)
    path = index_path(embeddings)
    index.save(path, stored.source)
    return path, replace(report, bytes=path.stat().st_size)


def load_gallery(path: Path) -> tuple[EmbeddingIndex, StoredEmbeddings]:
    """A stored gallery: an embeddings file or shard folder, or an index file of one. A stored index is
    used only if it was built from these very embeddings; otherwise they are indexed anew in memory."""
    path = Path(path)
    if path.suffix == INDEX_SUFFIX:  # DIR/index.faiss of a shard folder, or EMB.faiss beside EMB.safetensors
        path = path.parent if (path.parent / SHARD_LIST).exists() else path.with_suffix(".safetensors")
    stored = open_embeddings(path)
    idx_file = index_path(path)
    if idx_file.exists():
        index, source = EmbeddingIndex.load(idx_file)
        if source == stored.source and index.size == len(stored) and index.dim == stored.dim:
            return index, stored
    return build_index(stored)[0], stored


def retrieve_nerf(run: Path, query: Path, gallery: Path, k: int = 10) -> list[dict]:
    """The ``k`` gallery NeRFs nearest to a query NeRF file, best first, each an item (object,
    category, preset, split, file) with its cosine ``score``. The gallery is a zoo (embedded now),
    an embeddings file, a shard folder or an index file; stored embeddings must come from the same encoder."""
    gallery = Path(gallery)
    if Path(query).is_dir():
        raise InputError(f"{query}: --query must be a NeRF file, not a folder")
    encoder = Encoder.load(run)
    q = encoder.embed([query])
    if gallery.is_dir() and not (gallery / SHARD_LIST).exists():
        emb = encoder.embed([gallery])
        scores, rows = EmbeddingIndex.build(emb.vectors, "Flat").search(q.vectors, k)
        items = [emb.items[r] for r in rows[0]]
    elif gallery.exists():
        index, stored = load_gallery(gallery)
        encoder.check(stored.checkpoint, gallery)
        scores, rows = index.search(q.vectors, k)
        found = rows[0] >= 0  # an approximate index may find fewer than k
        scores, items = scores[:, found], stored.items(rows[0][found].tolist())
    else:
        raise InputError(f"{gallery}: no such zoo, embeddings, shard folder or index file")
    return [{**it, "score": float(s)} for s, it in zip(scores[0], items, strict=True)]
