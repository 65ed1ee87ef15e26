"""Safetensors files that carry their own description: tensors plus one metadata key ``nerfspace``
holding sorted JSON with a ``format`` tag. Checkpoints, embeddings and classifiers use this."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from nerfspace.atomic import atomic_write_bytes
from nerfspace.errors import InputError

META_KEY = "nerfspace"


def write_tagged(path: Path, tensors: dict[str, torch.Tensor], fmt: str, meta: dict) -> None:
    """Atomically write ``tensors`` with metadata ``{"format": fmt, **meta}``."""
    blob = save(
        {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
        {META_KEY: json.dumps({"format": fmt, **meta}, sort_keys=True)},
    )
    atomic_write_bytes(Path(path), blob)


def read_tagged(
    path: Path, fmt: str | tuple[str, ...], what: str, with_tensors: bool = True
) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of a file of format ``fmt`` (or one of several); one clear error (naming
    ``what``) otherwise. ``with_tensors=False`` reads the metadata only (the tensors dict is empty)."""
    try:
        with safe_open(path, framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable {what} ({e})") from e
    formats = (fmt,) if isinstance(fmt, str) else fmt
    if not isinstance(meta, dict) or meta.get("format") not in formats:
        raise InputError(f"{path}: not a {what}")
    return tensors, meta
