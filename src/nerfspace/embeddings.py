"""The embeddings file: safetensors with ``embeddings`` [N, D] float32 and, in the metadata key
``nerfspace``, one sorted-JSON object ``{"format": "nerfspace-embeddings/1", "encoder": {...},
"checkpoint": sha256, "items": [{"object", "category", "preset", "split", "file"}, ...]}``; row i of
``embeddings`` belongs to ``items[i]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nerfspace.atomic import sweep_temps
from nerfspace.errors import InputError, NonFiniteError
from nerfspace.tagged import read_tagged, write_tagged

FORMAT = "nerfspace-embeddings/1"
ITEM_KEYS = ("object", "category", "preset", "split", "file")


@dataclass
class Embeddings:
    vectors: torch.Tensor  # [N, D]
    items: list[dict]
    encoder: dict  # the composition that made them (or, for a baseline, its name)
    checkpoint: str  # sha256 of the checkpoint file ("" for a baseline)


def save_embeddings(path: Path, emb: Embeddings) -> None:
    """Write the embeddings file atomically (and remove temp files of an earlier write killed mid-way)."""
    path = Path(path)
    if not torch.isfinite(emb.vectors).all():
        raise NonFiniteError(f"{path}: refusing to write embeddings that hold NaN or Inf values")
    sweep_temps(path.parent, path.name)
    meta = {"encoder": emb.encoder, "checkpoint": emb.checkpoint, "items": emb.items}
    write_tagged(path, {"embeddings": emb.vectors}, FORMAT, meta)


def load_embeddings(path: Path) -> Embeddings:
    """Read and check an embeddings file: float rows, one well-formed item per row, finite values."""
    tensors, meta = read_tagged(path, FORMAT, "nerfspace embeddings file")
    vectors, items = tensors.get("embeddings"), meta.get("items")
    if vectors is None or vectors.dim() != 2 or not vectors.is_floating_point():
        raise InputError(f"{path}: not a nerfspace embeddings file (no [N, D] float tensor 'embeddings')")
    if not isinstance(items, list) or len(items) != vectors.shape[0]:
        raise InputError(f"{path}: not a nerfspace embeddings file (rows and items disagree)")
    for i, it in enumerate(items):
        if not (isinstance(it, dict) and all(isinstance(it.get(k), str) for k in ITEM_KEYS)):
            raise InputError(f"{path}: item {i} lacks one of {', '.join(ITEM_KEYS)}")
    if not isinstance(meta.get("encoder"), dict) or not isinstance(meta.get("checkpoint"), str):
        raise InputError(f"{path}: not a nerfspace embeddings file (no encoder or checkpoint)")
    if not torch.isfinite(vectors).all():
        raise NonFiniteError(f"{path}: embeddings hold NaN or Inf values")
    return Embeddings(vectors.float(), items, meta["encoder"], meta["checkpoint"])
