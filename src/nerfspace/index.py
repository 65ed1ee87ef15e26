"""A FAISS cosine index over a gallery of embeddings, and its file.

An index file (``EMB.faiss``) is stored beside the embeddings file it was built from (``EMB.safetensors``),
which names its rows (object, category, preset) and the encoder that produced them. The index file starts
with a line naming the sha256 of that embeddings file; an index whose embeddings changed since (or of an
older version, without the line) is not used: the gallery is indexed anew in memory.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import torch

from nerfspace.atomic import atomic_write_bytes
from nerfspace.errors import InputError

IVF_ABOVE = 100_000  # galleries larger than this get an inverted-file index (approximate), smaller a flat one
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
    def build(cls, vectors: torch.Tensor | np.ndarray) -> EmbeddingIndex:
        x = unit(vectors)
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


def index_path(embeddings_file: Path) -> Path:
    return Path(embeddings_file).with_suffix(INDEX_SUFFIX)
