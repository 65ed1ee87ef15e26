"""The embeddings file: safetensors with ``embeddings`` [N, D] float32 and, in the metadata key
``nerfspace``, one sorted-JSON object ``{"format": "nerfspace-embeddings/1", "encoder": {...},
"checkpoint": sha256, "items": [{"object", "category", "preset", "split", "file"}, ...]}``; row i of
``embeddings`` belongs to ``items[i]``.

A gallery too large for one array is a folder of such files (shards, ``embeddings-00000.safetensors``, ...)
and ``shards.json`` listing them in order with their rows and sha256, written last: a folder without it
is an embedding run cut short, which `nerfspace embed --shard-rows` resumes. `StoredEmbeddings` reads a
file or a shard folder one shard at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nerfspace.atomic import atomic_write_json, sweep_temps
from nerfspace.cache import file_hash
from nerfspace.errors import InputError, NonFiniteError
from nerfspace.tagged import read_tagged, write_tagged

FORMAT = "nerfspace-embeddings/1"
SHARDS_FORMAT = "nerfspace-embedding-shards/1"
SHARD_LIST = "shards.json"
SHARD_NAME = re.compile(r"^embeddings-\d{5}\.safetensors$")
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
    vectors = tensors.get("embeddings")
    if vectors is None or vectors.dim() != 2 or not vectors.is_floating_point():
        raise InputError(f"{path}: not a nerfspace embeddings file (no [N, D] float tensor 'embeddings')")
    _check_meta(path, meta, vectors.shape[0])
    if not torch.isfinite(vectors).all():
        raise NonFiniteError(f"{path}: embeddings hold NaN or Inf values")
    return Embeddings(vectors.float(), meta["items"], meta["encoder"], meta["checkpoint"])


def load_items(path: Path) -> list[dict]:
    """The items of an embeddings file, read from its header alone (its vectors are not read)."""
    _, meta = read_tagged(path, FORMAT, "nerfspace embeddings file", with_tensors=False)
    _check_meta(path, meta, None)
    return meta["items"]


def _check_meta(path: Path, meta: dict, rows: int | None) -> None:
    items = meta.get("items")
    if not isinstance(items, list) or (rows is not None and len(items) != rows):
        raise InputError(f"{path}: not a nerfspace embeddings file (rows and items disagree)")
    for i, it in enumerate(items):
        if not (isinstance(it, dict) and all(isinstance(it.get(k), str) for k in ITEM_KEYS)):
            raise InputError(f"{path}: item {i} lacks one of {', '.join(ITEM_KEYS)}")
    if not isinstance(meta.get("encoder"), dict) or not isinstance(meta.get("checkpoint"), str):
        raise InputError(f"{path}: not a nerfspace embeddings file (no encoder or checkpoint)")


def shard_file(folder: Path, i: int) -> Path:
    return Path(folder) / f"embeddings-{i:05d}.safetensors"


def shard_holds(file: Path, items: list[dict], checkpoint: str) -> bool:
    """Whether ``file`` is a readable shard of exactly ``items`` embedded by ``checkpoint`` (to resume)."""
    try:
        _, meta = read_tagged(file, FORMAT, "nerfspace embeddings file", with_tensors=False)
    except InputError:
        return False
    return meta.get("checkpoint") == checkpoint and meta.get("items") == items


def write_shard_list(
    folder: Path, shards: Sequence[tuple[Path, int]], encoder: dict, checkpoint: str, dim: int
) -> StoredEmbeddings:
    """Write ``shards.json`` for the shards (file, rows) of ``folder``, in order, their embeddings ``dim``
    wide: the folder is complete. Returns it as `open_embeddings` would (its shards just hashed)."""
    entries = [{"file": f.name, "rows": rows, "sha256": file_hash(f)} for f, rows in shards]
    listing = {"format": SHARDS_FORMAT, "encoder": encoder, "checkpoint": checkpoint, "dim": dim}
    atomic_write_json(Path(folder) / SHARD_LIST, listing | {"shards": entries})
    source = file_hash(Path(folder) / SHARD_LIST)
    return StoredEmbeddings(Path(folder), _laid_out(shards), encoder, checkpoint, dim, source)


def _laid_out(shards: Sequence[tuple[Path, int]]) -> tuple[Shard, ...]:
    """Shards (file, rows) in gallery order with their first rows' offsets."""
    offsets = [0]
    for _, rows in shards:
        offsets.append(offsets[-1] + rows)
    return tuple(Shard(Path(f), rows, o) for (f, rows), o in zip(shards, offsets, strict=False))


@dataclass(frozen=True)
class Shard:
    file: Path
    rows: int
    offset: int  # its first row's index in the gallery


@dataclass(frozen=True)
class StoredEmbeddings:
    """Embeddings on disk, read one shard at a time: an embeddings file (one shard) or a shard folder.
    ``source`` is the content hash that an index built from them records."""

    path: Path
    shards: tuple[Shard, ...]
    encoder: dict
    checkpoint: str
    dim: int
    source: str

    def __len__(self) -> int:
        return sum(s.rows for s in self.shards)

    def blocks(self) -> Iterator[tuple[Shard, Embeddings]]:
        """Each shard with its embeddings, in order."""
        for shard in self.shards:
            yield shard, self._load(shard)

    def vectors(self, rows: Sequence[int]) -> torch.Tensor:
        """The embeddings of gallery ``rows`` [len(rows), dim], in the order given; only the shards that
        hold them are read."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        out = torch.empty(len(rows), self.dim)
        for shard in self.shards:
            inside = (rows >= shard.offset) & (rows < shard.offset + shard.rows)
            if inside.any():
                out[inside] = self._load(shard).vectors[rows[inside] - shard.offset]
        return out

    def _load(self, shard: Shard) -> Embeddings:
        """A shard's embeddings; one that disagrees with the listing is refused."""
        emb = load_embeddings(shard.file)
        if (emb.checkpoint, emb.vectors.shape) != (self.checkpoint, (shard.rows, self.dim)):
            raise InputError(f"{shard.file}: disagrees with {self.path}'s shard list; embed again")
        return emb

    def items(self, rows: Sequence[int]) -> list[dict]:
        """The items of gallery ``rows``, in the order given; only the shards that hold them are read."""
        found: dict[int, dict] = {}
        for shard in self.shards:
            wanted = [r for r in rows if shard.offset <= r < shard.offset + shard.rows]
            if wanted:
                items = load_items(shard.file)
                found.update({r: items[r - shard.offset] for r in wanted})
        return [found[r] for r in rows]


def open_embeddings(path: Path) -> StoredEmbeddings:
    """An embeddings file or a complete shard folder, checked: every shard as listed (its sha256)."""
    path = Path(path)
    if not path.is_dir():
        emb = load_embeddings(path)
        shard = Shard(path, len(emb.items), 0)
        return StoredEmbeddings(
            path, (shard,), emb.encoder, emb.checkpoint, emb.vectors.shape[1], file_hash(path)
        )
    listing_file = path / SHARD_LIST
    if not listing_file.is_file():
        raise InputError(f"{path}: no {SHARD_LIST}: not a shard folder, or its embedding run was cut short")
    try:
        listing = json.loads(listing_file.read_text())
        entries = listing["shards"]
        ok = listing["format"] == SHARDS_FORMAT and isinstance(entries, list) and entries
        ok = ok and isinstance(listing["encoder"], dict) and isinstance(listing["checkpoint"], str)
        ok = ok and type(listing["dim"]) is int and listing["dim"] >= 1
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{listing_file}: not a readable shard list ({e})") from e
    if not ok:
        raise InputError(f"{listing_file}: not a nerfspace shard list")
    shards = []
    for e in entries:
        name, rows, digest = (e.get(k) if isinstance(e, dict) else None for k in ("file", "rows", "sha256"))
        if not (isinstance(name, str) and SHARD_NAME.match(name)):
            raise InputError(f"{listing_file}: shard name {str(name)[:80]!r} is not one nerfspace writes")
        if not (type(rows) is int and rows >= 1):
            raise InputError(f"{listing_file}: {name}: rows must be a positive integer")
        file = path / name
        if not file.is_file() or file.is_symlink() or file_hash(file) != digest:
            raise InputError(f"{file}: missing or changed since {SHARD_LIST} was written; embed again")
        shards.append((file, rows))
    return StoredEmbeddings(
        path,
        _laid_out(shards),
        listing["encoder"],
        listing["checkpoint"],
        listing["dim"],
        file_hash(listing_file),
    )
