"""Retrieval on embeddings: a FAISS cosine index over a gallery, and the protocol's metrics
(instance recall@k for every architecture pair, class-level mAP).

An index file (``EMB.faiss``) is stored beside the embeddings file it was built from (``EMB.safetensors``),
which names its rows (object, category, preset) and the encoder that produced them. The index file starts
with a line naming the sha256 of that embeddings file; an index whose embeddings changed since (or of an
older version, without the line) is not used: the gallery is indexed anew in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from pathlib import Path

import faiss
import numpy as np
import torch

from nerfspace.atomic import atomic_write_bytes
from nerfspace.cache import file_hash
from nerfspace.errors import InputError
from nerfspace.training.embed import Embeddings, embed, load_embeddings, load_encoder

IVF_ABOVE = 100_000  # galleries larger than this get an inverted-file index (approximate), smaller a flat one
INDEX_SUFFIX = ".faiss"
INDEX_FORMAT = "nerfspace-faiss/1"


def _unit(x: torch.Tensor | np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(torch.as_tensor(x, dtype=torch.float32).numpy())
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class EmbeddingIndex:
    """Cosine-similarity search over a gallery of embeddings (FAISS inner product on unit vectors)."""

    def __init__(self, index: faiss.Index):
        self.index = index

    @classmethod
    def build(cls, vectors: torch.Tensor | np.ndarray) -> EmbeddingIndex:
        x = _unit(vectors)
        n, d = x.shape
        if n > IVF_ABOVE:
            lists = int(4 * np.sqrt(n))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, lists, faiss.METRIC_INNER_PRODUCT)
            index.train(x)
            index.nprobe = 16
        else:
            index = faiss.IndexFlatIP(d)
        index.add(x)
        return cls(index)

    @property
    def size(self) -> int:
        return self.index.ntotal

    @property
    def dim(self) -> int:
        return self.index.d

    def search(self, queries: torch.Tensor | np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine scores [Q, k] and gallery rows [Q, k] of the ``k`` nearest, best first."""
        if not 1 <= k <= self.size:
            raise InputError(f"k must be between 1 and the gallery size ({self.size}), got {k}")
        q = _unit(queries)
        if q.shape[1] != self.dim:
            raise InputError(
                f"query embeddings have {q.shape[1]} dimensions, the gallery {self.dim}: another encoder"
            )
        return self.index.search(q, k)

    def save(self, path: Path, source: str) -> None:
        """Write the index, tagged with ``source``: the sha256 of the embeddings file it indexes."""
        header = f"{INDEX_FORMAT} {source}\n".encode()
        atomic_write_bytes(Path(path), header + faiss.serialize_index(self.index).tobytes())

    @classmethod
    def load(cls, path: Path) -> tuple[EmbeddingIndex, str | None]:
        """The index of a file and the sha256 of the embeddings it was built from (None if untagged)."""
        try:
            raw = Path(path).read_bytes()
            source = None
            if raw.startswith(INDEX_FORMAT.encode()):
                line, _, raw = raw.partition(b"\n")
                source = line.decode(errors="replace").split(" ")[-1]
            return cls(faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))), source
        except (OSError, RuntimeError) as e:
            raise InputError(f"{path}: not a readable FAISS index ({e})") from e


def index_path(embeddings_file: Path) -> Path:
    return Path(embeddings_file).with_suffix(INDEX_SUFFIX)


def build_index_file(embeddings_file: Path) -> Path:
    """Build the index of an embeddings file and store it beside it; returns the index path."""
    emb = load_embeddings(embeddings_file)
    path = index_path(embeddings_file)
    EmbeddingIndex.build(emb.vectors).save(path, file_hash(embeddings_file))
    return path


def load_gallery(path: Path) -> tuple[EmbeddingIndex, Embeddings]:
    """A stored gallery: an index file or its embeddings file (the other one is found beside it). A stored
    index is used only if it was built from these very embeddings; otherwise they are indexed anew."""
    path = Path(path)
    emb_file = path.with_suffix(".safetensors") if path.suffix == INDEX_SUFFIX else path
    emb = load_embeddings(emb_file)
    idx_file = index_path(emb_file)
    if idx_file.exists():
        index, source = EmbeddingIndex.load(idx_file)
        if (
            source == file_hash(emb_file)
            and index.size == len(emb.items)
            and index.dim == emb.vectors.shape[1]
        ):
            return index, emb
    return EmbeddingIndex.build(emb.vectors), emb


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
        _, rows = EmbeddingIndex.build(vectors[gallery]).search(vectors[queries], kmax)
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
    x = _unit(vectors)
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


def retrieve_nerf(run: Path, query: Path, gallery: Path, k: int = 10) -> list[dict]:
    """The ``k`` gallery NeRFs nearest to a query NeRF file, best first, each an item (object,
    category, preset, split, file) with its cosine ``score``. The gallery is a zoo (embedded now) or
    an embeddings/index file, which must come from the same encoder."""
    gallery = Path(gallery)
    if Path(query).is_dir():
        raise InputError(f"{query}: --query must be a NeRF file, not a folder")
    q = embed(run, [query])
    if gallery.is_dir():
        emb = embed(run, [gallery])
        index = EmbeddingIndex.build(emb.vectors)
    elif gallery.exists():
        index, emb = load_gallery(gallery)
        if emb.checkpoint != q.checkpoint:
            _, _, ckpt = load_encoder(run)
            raise InputError(
                f"{gallery}: embeddings come from another encoder (checkpoint {emb.checkpoint[:12]}),"
                f" not {ckpt}'s ({q.checkpoint[:12]}); embed the gallery with this run"
            )
    else:
        raise InputError(f"{gallery}: no such zoo, embeddings or index file")
    scores, rows = index.search(q.vectors, k)
    return [{**emb.items[r], "score": float(s)} for s, r in zip(scores[0], rows[0], strict=True)]
