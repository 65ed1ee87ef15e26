"""Embedding NeRFs with a trained encoder, and the embeddings file.

An embeddings file is safetensors: ``embeddings`` [N, D] float32, and in the metadata key
``nerfspace`` one sorted-JSON object ``{"format": "nerfspace-embeddings/1", "encoder": {...},
"checkpoint": sha256, "items": [{"object", "category", "preset", "split", "file"}, ...]}``; row i of
``embeddings`` belongs to ``items[i]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data

from nerfspace.atomic import sweep_temps
from nerfspace.cache import file_hash
from nerfspace.encoder import EncoderConfig, GMNEncoder
from nerfspace.errors import InputError, NonFiniteError
from nerfspace.graphs import nerf_to_graph
from nerfspace.graphs.cache import cached_graph
from nerfspace.tagged import read_tagged, write_tagged
from nerfspace.training.checkpoint import load_into, load_weights, resolve_checkpoint
from nerfspace.training.data import zoo_items
from nerfspace.zoo.storage import load_nerf

FORMAT = "nerfspace-embeddings/1"


@dataclass
class Embeddings:
    vectors: torch.Tensor  # [N, D]
    items: list[dict]
    encoder: dict
    checkpoint: str


def load_encoder(checkpoint: Path) -> tuple[GMNEncoder, dict, Path]:
    """The trained encoder of a checkpoint file or run folder, in eval mode."""
    path = resolve_checkpoint(checkpoint)
    state, meta = load_weights(path)
    try:
        config = EncoderConfig(**meta["train"]["encoder"])
    except (KeyError, TypeError, InputError) as e:  # InputError: a config this version refuses
        raise InputError(f"{path}: checkpoint metadata lacks a valid encoder config ({e})") from e
    encoder = GMNEncoder(config)
    prefix = "encoder."
    load_into(encoder, {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, path)
    return encoder.eval(), meta, path


def _inputs(inputs: list[Path]) -> list[tuple[dict, Callable[[], Data]]]:
    """(item, its graph's maker) for every NeRF of the given zoos (graphs from the zoo's cache) and
    NeRF files (each read once, here, so a bad one fails before any work)."""
    out = []
    for inp in map(Path, inputs):
        if inp.is_dir():
            for it in zoo_items(inp):
                item = {"object": it.object, "category": it.category, "preset": it.preset, "split": it.split}
                out.append(({**item, "file": str(it.file)}, partial(cached_graph, it.file, inp / "cache")))
        elif inp.exists():
            nerf = load_nerf(inp)
            m = nerf.meta
            item = {"object": m.get("object_id", inp.stem), "category": m.get("category", ""), "split": ""}
            graph = partial(nerf_to_graph, nerf.spec, nerf.params, nerf.occupancy)
            out.append(({**item, "preset": nerf.preset, "file": str(inp)}, graph))
        else:
            raise InputError(f"{inp}: no such zoo folder or NeRF file")
    if not out:
        raise InputError("nothing to embed")
    return out


@torch.no_grad()
def embed(
    checkpoint: Path,
    inputs: list[Path],
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Embeddings:
    """Embed every NeRF of ``inputs`` (zoo folders and NeRF files) with a trained encoder."""
    encoder, meta, path = load_encoder(checkpoint)
    todo = _inputs(inputs)
    vectors = []
    for i in range(0, len(todo), batch_size):
        graphs = [make() for _, make in todo[i : i + batch_size]]
        vectors.append(encoder(Batch.from_data_list(graphs)))
        if progress:
            progress(min(i + batch_size, len(todo)), len(todo))
    return Embeddings(torch.cat(vectors), [t[0] for t in todo], encoder.config.to_dict(), file_hash(path))


def save_embeddings(path: Path, emb: Embeddings) -> None:
    """Write the embeddings file atomically (and remove temp files of an earlier write killed mid-way)."""
    path = Path(path)
    if not torch.isfinite(emb.vectors).all():
        raise NonFiniteError(f"{path}: refusing to write embeddings that hold NaN or Inf values")
    sweep_temps(path.parent, path.name)
    meta = {"encoder": emb.encoder, "checkpoint": emb.checkpoint, "items": emb.items}
    write_tagged(path, {"embeddings": emb.vectors}, FORMAT, meta)


ITEM_KEYS = ("object", "category", "preset", "split", "file")


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
