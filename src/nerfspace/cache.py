"""Content-addressed caches on disk: tensors derived from a file, keyed by the file's SHA-256 and
written atomically, so a crash never leaves a half-written entry and a changed file never hits a
stale one. An entry that cannot be read, or holds other keys (an older layout), is rebuilt; the temp
files of writes killed mid-way are removed by the first write into a folder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from nerfspace.atomic import atomic_write_bytes, sweep_temps

_swept: set[Path] = set()  # cache folders swept of stale temp files by this process


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_tensors(
    entry: Path, keys: tuple[str, ...], build: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """The tensors stored at ``entry`` if it holds exactly ``keys``; else ``build()``, stored where the
    folder is writable."""
    if entry.exists():
        try:
            t = load_file(entry)
            if set(t) == set(keys):
                return t
        except (SafetensorError, OSError):
            pass  # damaged: rebuilt below
    t = build()
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        if entry.parent not in _swept:
            sweep_temps(entry.parent)
            _swept.add(entry.parent)
        atomic_write_bytes(entry, save({k: t[k].contiguous() for k in keys}))
    except OSError:
        pass  # a read-only zoo (a shipped one, say): work uncached
    return t
