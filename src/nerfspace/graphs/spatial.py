"""Spatial parts of parameter graphs, one converter per family, registered by family name.

A converter returns the family's extra nodes and its edges into the MLP's first inputs (the
spatial-feature nodes 0 … spatial_dim-1), one edge per stored scalar, in storage order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nerfspace.archs import ArchSpec
from nerfspace.fields.triplane import PLANE_AXES, cell_positions
from nerfspace.graphs.schema import HASH_ENTRY, HASH_VALUE, PLANE_CELL, PLANE_VALUE


@dataclass
class SpatialPart:
    x: torch.Tensor  # [N, 4] node features of the spatial nodes
    src: torch.Tensor  # [E] spatial node of each edge (0-based among the spatial nodes)
    dst: torch.Tensor  # [E] MLP input node of each edge
    edge_attr: torch.Tensor  # [E, 6]


Converter = Callable[[ArchSpec, dict[str, torch.Tensor]], "SpatialPart | None"]
SPATIAL: dict[str, Converter] = {}


def register(family: str) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        SPATIAL[family] = fn
        return fn

    return deco


def _nodes(n: int, node_type: int) -> torch.Tensor:
    """Features of ``n`` spatial nodes: layer 0, no order, the type, no bias."""
    x = torch.zeros(n, 4)
    x[:, 1] = -1.0
    x[:, 2] = node_type
    return x


def _edges(values: torch.Tensor, edge_type: int, pos: torch.Tensor) -> torch.Tensor:
    n = values.shape[0]
    return torch.cat([values[:, None], torch.zeros(n, 1), torch.full((n, 1), float(edge_type)), pos], 1)


@register("mlp")
def mlp(spec: ArchSpec, params: dict[str, torch.Tensor]) -> None:
    return None


@register("triplane")
def triplane(spec: ArchSpec, params: dict[str, torch.Tensor]) -> SpatialPart:
    """A node per plane cell (3·R²) linked to the F feature nodes. Edge position: the cell's (x, y, z)
    in [0, 1]; the axis its plane lacks is -1 (unused), which also tells the plane apart."""
    planes = params["triplane"]  # (3, R, R, F)
    _, res, _, nf = planes.shape
    pos = (cell_positions(res) + 1) / 2  # [-1, 1] → [0, 1]
    for p, (a, b) in enumerate(PLANE_AXES):
        pos[p, :, :, 3 - a - b] = -1.0  # the axis the plane lacks
    cells = 3 * res * res
    src = torch.arange(cells).repeat_interleave(nf)
    dst = torch.arange(nf).repeat(cells)
    attr = _edges(planes.reshape(-1), PLANE_VALUE, pos.reshape(cells, 3).repeat_interleave(nf, 0))
    return SpatialPart(_nodes(cells, PLANE_CELL), src, dst, attr)


@register("hash")
def hashgrid(spec: ArchSpec, params: dict[str, torch.Tensor]) -> SpatialPart:
    """A node per table entry per level linked to that level's F feature nodes. Edge position:
    (level, entry index / table size, -1), both in [0, 1]."""
    nf, src, dst, pos, values = spec.hash_features, [], [], [], []
    first = 0
    for lvl, size in enumerate(spec.hash_table_sizes):
        src.append(first + torch.arange(size).repeat_interleave(nf))
        dst.append(lvl * nf + torch.arange(nf).repeat(size))
        p = torch.full((size * nf, 3), -1.0)
        p[:, 0] = lvl / max(spec.hash_levels - 1, 1)
        p[:, 1] = torch.arange(size).repeat_interleave(nf) / size
        pos.append(p)
        values.append(params[f"hash.level{lvl}"].reshape(-1))
        first += size
    attr = _edges(torch.cat(values), HASH_VALUE, torch.cat(pos))
    return SpatialPart(_nodes(first, HASH_ENTRY), torch.cat(src), torch.cat(dst), attr)
