"""FAISS at a million rows: `nerfspace index build`'s path (a shard folder, a seeded training sample,
the search knob tuned to recall@10 of exact search) against exact search, in one run.

python benchmarks/faiss_scale.py [--rows 1000000] [--shard-rows 100000] [--queries 1000]
    [--factories "default;IVF4096,SQ8;IVF4096,PQ64"] [--out runs/faiss_scale]

The gallery is a stated synthetic set built from the shipped encoder's embeddings of the independent demo
zoo (676 NeRFs, 512 dimensions): row i is NeRF (i mod 676)'s embedding plus Gaussian noise along the zoo's
16 principal directions, at half the zoo's spread along each, scaled to unit length; every shard is drawn
from its own seed, so no step holds the whole gallery as one array. Queries are fresh draws of the same
process (not gallery rows). Per factory: build time (training, adding, tuning), index bytes, the tuned
knob, recall@10 of exact search on the fresh queries, and single-query latency on one thread against
FAISS's exact flat search of the same gallery, timed right after it.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from common import ROOT, save_result
from nerfspace.demo import shipped
from nerfspace.embeddings import (
    Embeddings,
    open_embeddings,
    save_embeddings,
    shard_file,
    write_shard_list,
)
from nerfspace.evaluation.retrieval import IndexConfig, build_index, exact_search
from nerfspace.index import EmbeddingIndex, index_path, unit
from nerfspace.inference import Encoder

COMPONENTS = 16  # principal directions the noise lies along
SPREAD = 0.5  # noise std along each, as a fraction of the zoo's std along it
K = 10


def _base() -> tuple[Embeddings, torch.Tensor]:
    """The shipped encoder's embeddings of the independent demo zoo, and the noise basis [COMPONENTS, D]
    (principal directions scaled by SPREAD x the zoo's std along each)."""
    s = next(s for s in shipped() if s.track == "independent")
    emb = Encoder.load(s.encoder).embed([s.zoo])
    x = torch.from_numpy(unit(emb.vectors))
    _, sv, v = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    std = sv[:COMPONENTS] / np.sqrt(len(x) - 1)
    return Embeddings(x, emb.items, emb.encoder, emb.checkpoint), SPREAD * std[:, None] * v[:COMPONENTS]


def _draw(base: Embeddings, basis: torch.Tensor, rows: range, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = base.vectors[torch.tensor(rows) % len(base.vectors)]
    return torch.from_numpy(unit(centres + torch.randn(len(rows), len(basis), generator=g) @ basis))


def _gallery(folder: Path, base: Embeddings, basis: torch.Tensor, rows: int, shard_rows: int) -> None:
    """The synthetic gallery as a shard folder, written through nerfspace's own writers."""
    if (folder / "shards.json").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for i, start in enumerate(range(0, rows, shard_rows)):
        part = range(start, min(start + shard_rows, rows))
        items = [
            {**base.items[r % len(base.items)], "object": f"synthetic_{r:07d}", "split": "", "file": ""}
            for r in part
        ]
        file = shard_file(folder, i)
        save_embeddings(
            file, Embeddings(_draw(base, basis, part, seed=i), items, base.encoder, base.checkpoint)
        )
        shards.append((file, len(part)))
    write_shard_list(folder, shards, base.encoder, base.checkpoint, base.vectors.shape[1])


def _latency_ms(index: faiss.Index, queries: np.ndarray, k: int) -> float:
    """Mean single-query search time in ms, one query at a time, one thread."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        index.search(queries[:1], k)  # warm
        t0 = time.perf_counter()
        for q in queries:
            index.search(q[None], k)
        return 1000 * (time.perf_counter() - t0) / len(queries)
    finally:
        faiss.omp_set_num_threads(threads)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--shard-rows", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--latency-queries", type=int, default=100)
    ap.add_argument(
        "--factories", default="default;IVF4096,SQ8;IVF4096,PQ64", help="FAISS factory strings, ;-separated"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "faiss_scale")
    args = ap.parse_args()

    t0 = time.perf_counter()
    base, basis = _base()
    folder = args.out / f"gallery_{args.rows}"
    _gallery(folder, base, basis, args.rows, args.shard_rows)
    stored = open_embeddings(folder)
    gallery_s = time.perf_counter() - t0

    queries = _draw(base, basis, range(args.queries), seed=10**6)  # fresh draws, not gallery rows
    t0 = time.perf_counter()
    truth = exact_search(stored, queries, K)[1]
    exact_s = time.perf_counter() - t0
    flat = EmbeddingIndex.create(stored.dim, "Flat")  # exact search, timed beside each index
    for _, emb in stored.blocks():
        flat.add(emb.vectors)
    lat_q = unit(queries[: args.latency_queries])

    results = {}
    for factory in args.factories.split(";"):
        index, report = build_index(stored, IndexConfig(None if factory == "default" else factory))
        path = index_path(folder)
        index.save(path, stored.source)
        rows = index.search(queries, K)[1]
        recall = float(np.mean([len(set(r) & set(t)) / K for r, t in zip(rows, truth, strict=True)]))
        ms, flat_ms = _latency_ms(index.index, lat_q, K), _latency_ms(flat.index, lat_q, K)
        results[report.factory] = {
            **report.to_dict(),
            "bytes": path.stat().st_size,
            "fresh_recall": recall,
            "ms_per_query": ms,
            "flat_ms_per_query": flat_ms,
            "speedup": flat_ms / ms,
        }
        print(factory, results[report.factory], flush=True)
        del index
    save_result(
        "faiss_scale",
        {
            "rows": len(stored),
            "dim": stored.dim,
            "shards": len(stored.shards),
            "queries": len(queries),
            "latency_queries": len(lat_q),
            "gallery_s": gallery_s,
            "exact_s": exact_s,
            "flat_bytes": len(stored) * stored.dim * 4,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "factories": results,
        },
    )


if __name__ == "__main__":
    main()
