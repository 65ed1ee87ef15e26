"""The paper's public NeRF dataset layout (tiny-cuda-nn weights), read into and written from NeRFs.

One NeRF is a folder ``<arch>/<class_id>/<nerf_id>/`` holding ``nerf_weights.pth`` (a dict of tensors:
``mlp_base.params``, the flat MLP; ``encoding.params``, the flat hash tables; ``triplane``, the planes)
and ``grid.pth`` (the occupancy grid, sparse or dense). Flat layouts (tiny-cuda-nn):

- ``mlp_base.params``: layer by layer, input to output; each weight ``(out, in)`` row-major; no biases;
  the input is padded to ``spec.mlp_in`` columns, the output to ``spec.out_pad`` rows, kept verbatim.
- ``encoding.params``: level by level; level ``l`` holds ``spec.hash_table_sizes[l]`` entries of
  ``hash_features`` values each, entry-major.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from nerfspace.archs import ArchSpec
from nerfspace.atomic import atomic_write_json
from nerfspace.errors import FileFormatError, SpecError, SpecMismatchError
from nerfspace.interop.occupancy import grid_from_tensor, resample
from nerfspace.interop.torchfile import as_float32, load_torch, save_torch, tensor_dict
from nerfspace.zoo.storage import NeRF, check_params

WEIGHTS_FILE = "nerf_weights.pth"
GRID_FILE = "grid.pth"
SPEC_FILE = "spec.json"
MLP_KEY = "mlp_base.params"
HASH_KEY = "encoding.params"
PLANE_KEY = "triplane"
GRID_KEYS = ("occupancy", "binaries", "_binary")  # a dict grid file: ours, nerfacc's names


def _unflatten(path: Path, key: str, flat: torch.Tensor, shapes: dict[str, tuple[int, ...]]) -> dict:
    """Split a flat vector into the named tensors of ``shapes``, in order."""
    sizes = [math.prod(s) for s in shapes.values()]
    if flat.dim() != 1 or flat.numel() != sum(sizes):
        parts = " + ".join("x".join(map(str, s)) for s in shapes.values())
        raise SpecMismatchError(
            f"{path}: {key!r} holds {tuple(flat.shape)} values, the spec needs a flat vector of "
            f"{sum(sizes)} ({parts})"
        )
    return {n: c.reshape(s) for (n, s), c in zip(shapes.items(), flat.split(sizes), strict=True)}


def _no_bias(path: Path | str, spec: ArchSpec) -> None:
    if spec.bias:
        raise SpecError(f"{path}: tiny-cuda-nn networks have no biases; this spec has bias=true")


def params_from_gmnerf(path: Path, spec: ArchSpec, weights: dict[str, torch.Tensor]) -> dict:
    """Our parameter dict from the tensors of a ``nerf_weights.pth`` (other keys are ignored)."""
    _no_bias(path, spec)
    needed = [MLP_KEY] + {"hash": [HASH_KEY], "triplane": [PLANE_KEY]}.get(spec.family, [])
    missing = [k for k in needed if k not in weights]
    if missing:
        raise SpecMismatchError(f"{path}: missing {', '.join(map(repr, missing))} for a {spec.family} NeRF")
    t = {k: as_float32(path, k, weights[k]) for k in needed}
    shapes = spec.param_shapes()
    params = _unflatten(path, MLP_KEY, t[MLP_KEY], {n: s for n, s in shapes.items() if n.startswith("mlp.")})
    if spec.family == "hash":
        tables = {n: s for n, s in shapes.items() if n.startswith("hash.")}
        params.update(_unflatten(path, HASH_KEY, t[HASH_KEY], tables))
    elif spec.family == "triplane":
        params[PLANE_KEY] = t[PLANE_KEY]
    check_params(path, spec, params)
    return params


def params_to_gmnerf(spec: ArchSpec, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of a ``nerf_weights.pth`` for our parameter dict (inverse of `params_from_gmnerf`)."""
    _no_bias("export", spec)
    names = spec.param_shapes()
    out = {MLP_KEY: torch.cat([params[n].reshape(-1) for n in names if n.startswith("mlp.")])}
    if spec.family == "hash":
        out[HASH_KEY] = torch.cat([params[n].reshape(-1) for n in names if n.startswith("hash.")])
    elif spec.family == "triplane":
        out[PLANE_KEY] = params[PLANE_KEY].contiguous()
    return out


def read_grid(path: Path) -> torch.Tensor:
    """The bool [R, R, R] occupancy grid of a ``grid.pth``: a tensor, or a dict holding one under
    ``occupancy``, ``binaries`` or ``_binary``."""
    obj = load_torch(path)
    if isinstance(obj, dict):
        obj = next((obj[k] for k in GRID_KEYS if k in obj), None)
    if not isinstance(obj, torch.Tensor):
        raise FileFormatError(
            f"{path}: expected an occupancy grid tensor (or a dict with one of {GRID_KEYS})"
        )
    return grid_from_tensor(path, obj)


def read_gmnerf_nerf(folder: Path, spec: ArchSpec, occ_res: int | None = None) -> NeRF:
    """The NeRF in a ``<nerf_id>`` folder; its grid resampled to ``occ_res`` (None: kept as stored)."""
    folder = Path(folder)
    path = folder / WEIGHTS_FILE
    params = params_from_gmnerf(path, spec, tensor_dict(path, load_torch(path)))
    if not (folder / GRID_FILE).exists():
        raise FileFormatError(f"{folder}: missing occupancy grid {GRID_FILE}")
    occ = read_grid(folder / GRID_FILE)
    return NeRF(spec, params, resample(occ, occ_res) if occ_res else occ)


def write_gmnerf_nerf(folder: Path, nerf: NeRF) -> None:
    """Write ``nerf`` as a ``<nerf_id>`` folder: weights, sparse grid, and its spec as ``spec.json``."""
    folder = Path(folder)
    weights = params_to_gmnerf(nerf.spec, nerf.params)
    folder.mkdir(parents=True, exist_ok=True)
    save_torch(folder / WEIGHTS_FILE, weights)
    save_torch(folder / GRID_FILE, nerf.occupancy.bool().to_sparse())
    atomic_write_json(folder / SPEC_FILE, nerf.spec.to_dict())
