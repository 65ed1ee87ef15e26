"""Retrieval for users: index files of embeddings files, stored galleries, the nearest NeRFs to a query
NeRF file (`nerfspace.index` holds the index itself)."""

from __future__ import annotations

from pathlib import Path

from nerfspace.cache import file_hash
from nerfspace.embeddings import Embeddings, load_embeddings
from nerfspace.errors import InputError
from nerfspace.index import INDEX_SUFFIX, EmbeddingIndex, index_path
from nerfspace.inference import Encoder


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


def retrieve_nerf(run: Path, query: Path, gallery: Path, k: int = 10) -> list[dict]:
    """The ``k`` gallery NeRFs nearest to a query NeRF file, best first, each an item (object,
    category, preset, split, file) with its cosine ``score``. The gallery is a zoo (embedded now) or
    an embeddings/index file, which must come from the same encoder."""
    gallery = Path(gallery)
    if Path(query).is_dir():
        raise InputError(f"{query}: --query must be a NeRF file, not a folder")
    encoder = Encoder.load(run)
    q = encoder.embed([query])
    if gallery.is_dir():
        emb = encoder.embed([gallery])
        index = EmbeddingIndex.build(emb.vectors)
    elif gallery.exists():
        index, emb = load_gallery(gallery)
        encoder.check(emb, gallery)
    else:
        raise InputError(f"{gallery}: no such zoo, embeddings or index file")
    scores, rows = index.search(q.vectors, k)
    return [{**emb.items[r], "score": float(s)} for s, r in zip(scores[0], rows[0], strict=True)]
