"""A FAISS cosine index over a gallery of embeddings, and its file.

An index file (``EMB.faiss``) is stored beside the embeddings file it was built from (``EMB.safetensors``),
which names its rows (object, category, preset) and the encoder that produced them; a shard folder keeps
its index inside (``DIR/index.faiss``). The index file starts with a line naming the content hash of those
embeddings; an index whose embeddings changed since (or of an older version, without the line) is not
used: the gallery is indexed anew in memory. Any FAISS factory string makes the index (cosine: inner
product on unit vectors); its search knob (``nprobe``, ``efSearch``) is stored with it.
"""

from __future__ import annotations

import re
from pathlib import Path

import faiss
import numpy as np
import torch

from nerfspace.atomic import atomic_write_bytes
from nerfspace.errors import InputError

IVF_ABOVE = 100_000  # galleries larger than this get an inverted-file index (approximate), smaller a flat one
DEFAULT_NPROBE = 16  # lists an IVF index scans until tuned (`nerfspace index build` tunes it)
INDEX_SUFFIX = ".faiss"
INDEX_FORMAT = "nerfspace-faiss/1"


def unit(x: torch.Tensor | np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as a contiguous numpy array of ``dtype``."""
    x = np.ascontiguousarray(torch.as_tensor(x).detach().cpu().numpy(), dtype=dtype)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class EmbeddingIndex:
    """Cosine-similarity search over a gallery of embeddings (FAISS inner product on unit vectors)."""

    def __init__(self, index: faiss.Index):
        self.index = index

    @classmethod
    def create(cls, dim: int, factory: str) -> EmbeddingIndex:
        """An empty cosine index made by a FAISS factory string ("Flat", "IVF4096,Flat", "HNSW32", ...)."""
        try:
            return cls(faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT))
        except RuntimeError as e:
            why = re.sub(r"^Error in .* at \S+:\d+: ", "", str(e).strip().splitlines()[-1])[:200]
            raise InputError(f"FAISS refuses the factory string {factory[:100]!r}: {why}") from e

    @classmethod
    def build(cls, vectors: torch.Tensor | np.ndarray, factory: str | None = None) -> EmbeddingIndex:
        """An index of ``vectors`` (trained on all of them where the index needs training)."""
        x = unit(vectors)
        index = cls.create(x.shape[1], factory or default_factory(len(x)))
        index.train(x)
        index.add(x)
        return index

    @property
    def ivf_lists(self) -> int | None:
        """The inverted lists of an IVF index (None for others)."""
        ivf = faiss.try_extract_index_ivf(self.index)
        return None if ivf is None else ivf.nlist

    def train(self, sample: torch.Tensor | np.ndarray) -> None:
        if not self.index.is_trained:
            x = unit(sample)
            if self.ivf_lists and len(x) < self.ivf_lists:
                raise InputError(f"{len(x)} rows cannot train an index of {self.ivf_lists} lists")
            self.index.train(x)
            if self.ivf_lists:
                self.set_search_parameter(min(DEFAULT_NPROBE, self.ivf_lists))

    def add(self, vectors: torch.Tensor | np.ndarray) -> None:
        self.index.add(unit(vectors))

    @property
    def search_parameter(self) -> str | None:
        """The knob trading speed for recall: ``nprobe`` (IVF), ``efSearch`` (HNSW), None (exact, or none)."""
        if self.ivf_lists:
            return "nprobe"
        if isinstance(faiss.downcast_index(self.index), faiss.IndexHNSW):
            return "efSearch"
        return None

    def set_search_parameter(self, value: int) -> None:
        faiss.ParameterSpace().set_index_parameter(self.index, self.search_parameter, value)

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
        q = unit(queries)
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


def default_factory(rows: int) -> str:
    """Exact search up to `IVF_ABOVE` rows; beyond, an inverted file of about 4 sqrt(rows) lists (a power
    of two) over full vectors."""
    if rows <= IVF_ABOVE:
        return "Flat"
    return f"IVF{2 ** round(np.log2(4 * np.sqrt(rows)))},Flat"


def index_path(embeddings: Path) -> Path:
    """Where the index of an embeddings file (``EMB.faiss``) or a shard folder (``DIR/index.faiss``) lives."""
    embeddings = Path(embeddings)
    return (
        embeddings / f"index{INDEX_SUFFIX}" if embeddings.is_dir() else embeddings.with_suffix(INDEX_SUFFIX)
    )
