"""Plain PyTorch state dicts ↔ NeRFs.

A state dict names its tensors as a NeRF file does (``spec.param_shapes()``: ``mlp.{i}.weight`` (out, in),
``mlp.{i}.bias``, ``triplane``, ``hash.level{l}``), plus an optional ``occupancy`` grid (bool [R, R, R]);
without one, the grid is derived from the field's density at the cell centres. Export writes the spec
beside the state dict as ``<stem>.spec.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nerfspace.archs import ArchSpec
from nerfspace.atomic import atomic_write_json
from nerfspace.errors import InputError
from nerfspace.interop.occupancy import field_occupancy, grid_from_tensor, resample
from nerfspace.interop.torchfile import as_float32, load_torch, save_torch, tensor_dict
from nerfspace.zoo.fitting import fit_config
from nerfspace.zoo.storage import NeRF, check_params

OCC_KEY = "occupancy"


def read_state_dict(path: Path, spec: ArchSpec, occ_res: int | None = None) -> NeRF:
    """The NeRF of ``spec`` in a state dict file. Names are checked first (missing, unexpected), then
    shapes in ``spec.param_shapes()`` order, so the error names the first tensor that does not fit.
    ``occ_res``: resolution of the grid (default: the file's own, else the small scale's)."""
    path = Path(path)
    tensors = dict(tensor_dict(path, load_torch(path)))
    occ = tensors.pop(OCC_KEY, None)
    # float16/float64 become float32 before the check, so that names and shapes are judged first
    params = {n: t.float() if t.is_floating_point() and not t.is_sparse else t for n, t in tensors.items()}
    check_params(path, spec, params)
    params = {n: as_float32(path, n, t) for n, t in params.items()}
    if occ is None:
        return NeRF(spec, params, field_occupancy(spec, params, occ_res or fit_config().occ_res))
    grid = grid_from_tensor(path, occ)
    return NeRF(spec, params, resample(grid, occ_res) if occ_res else grid)


def state_dict_of(nerf: NeRF) -> dict[str, torch.Tensor]:
    """The state dict of a NeRF: its parameters and its occupancy grid."""
    return {**{n: t.detach().clone() for n, t in nerf.params.items()}, OCC_KEY: nerf.occupancy.bool().clone()}


def spec_path(path: Path) -> Path:
    """Where `write_state_dict` puts the spec of ``path``: ``<stem>.spec.json`` beside it."""
    return Path(path).with_name(Path(path).stem + ".spec.json")


def write_state_dict(path: Path, nerf: NeRF) -> None:
    """Write a NeRF as a state dict file (``torch.save``) and its spec as JSON beside it."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such folder")
    save_torch(path, state_dict_of(nerf))
    atomic_write_json(spec_path(path), nerf.spec.to_dict())
