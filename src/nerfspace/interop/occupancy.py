"""Occupancy grids of foreign files: reading dense or sparse grids, resampling, deriving from a field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from nerfspace.archs import ArchSpec
from nerfspace.errors import FileFormatError
from nerfspace.zoo.fitting import cell_density, fit_config, occupied


def grid_from_tensor(path: Path, t: torch.Tensor) -> torch.Tensor:
    """A bool [R, R, R] grid from a dense or sparse tensor of R^3 cells (shape [R, R, R], [1, R, R, R]
    or [R^3], cell (i, j, k) at flat index (i * R + j) * R + k); a cell is occupied where the value > 0."""
    dense = t.to_dense() if t.is_sparse else t
    res = round(dense.numel() ** (1 / 3))
    if dense.numel() == 0 or res**3 != dense.numel() or dense.dtype.is_complex:
        raise FileFormatError(f"{path}: occupancy grid of shape {tuple(t.shape)} is not a cube of cells")
    return (dense.reshape(res, res, res) > 0).cpu()


def _overlap(src: int, dst: int) -> torch.Tensor:
    """[dst, src] float: 1 where destination cell a and source cell i overlap along one axis."""
    i = torch.arange(src)
    lo = (i * dst) // src  # first destination cell touched by source cell i
    hi = ((i + 1) * dst + src - 1) // src  # one past the last
    a = torch.arange(dst)[:, None]
    return ((a >= lo) & (a < hi)).float()


def resample(occ: torch.Tensor, res: int) -> torch.Tensor:
    """Conservative resampling of a bool [R, R, R] grid to [res, res, res]: a cell is occupied when
    any source cell overlapping it is (no matter is lost; coarser grids only skip less)."""
    if occ.shape[-1] == res:
        return occ
    m = _overlap(occ.shape[-1], res)
    g = torch.einsum("ai,ijk->ajk", m, occ.float())
    g = torch.einsum("bj,ajk->abk", m, g)
    return torch.einsum("ck,abk->abc", m, g) > 0


def field_occupancy(spec: ArchSpec, params: dict[str, torch.Tensor], res: int) -> torch.Tensor:
    """A bool [res]^3 grid from the field itself: the cells whose centre density a render step would
    see (the fitting's threshold), for NeRFs that come without a grid."""
    cfg = replace(fit_config(), occ_res=res)
    return occupied(cell_density(spec, {n: t[None] for n, t in params.items()}, res), cfg)[0]
