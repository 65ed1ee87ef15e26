"""Tri-plane features: 3 axis-aligned planes, bilinear sampling, features summed over planes.

Layout of the stored tensor: ``(3, R, R, F)``. Plane ``p`` spans the axis pair ``PLANE_AXES[p]``
= (a, b); cell ``[p, i, j]`` sits at coordinate a = -1 + 2i/(R-1), b = -1 + 2j/(R-1) in the box
normalised to [-1, 1] (cell centres on the box corners, ``align_corners=True``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nerfspace.fields.packing import segments

PLANE_AXES = ((0, 1), (0, 2), (1, 2))


def cell_positions(res: int) -> torch.Tensor:
    """[3, R, R, 3] normalised (x, y, z) of every plane cell; the axis a plane lacks is 0."""
    lin = torch.linspace(-1.0, 1.0, res)
    ii, jj = torch.meshgrid(lin, lin, indexing="ij")
    pos = torch.zeros(3, res, res, 3)
    for p, (a, b) in enumerate(PLANE_AXES):
        pos[p, :, :, a] = ii
        pos[p, :, :, b] = jj
    return pos


def triplane_features(planes: torch.Tensor, x: torch.Tensor, net: torch.Tensor | None = None) -> torch.Tensor:
    """Sample ``planes`` [K, 3, R, R, F] at points ``x`` [K, P, 3] in [-1, 1] → [K, P, F], or at
    packed points ``x`` [M, 3] of fields ``net`` [M] → [M, F]."""
    if net is not None:
        parts = [
            triplane_features(planes[k : k + 1], x[None, s:e])[0]
            for k, s, e in segments(net, planes.shape[0])
        ]
        return torch.cat(parts) if parts else x.new_zeros(0, planes.shape[-1])
    k, _, res, _, nf = planes.shape
    inp = planes.permute(0, 1, 4, 2, 3).reshape(k * 3, nf, res, res)  # rows = first axis a
    # grid_sample's grid is (w, h) = (b, a)
    grid = torch.stack([x[..., [b, a]] for a, b in PLANE_AXES], dim=1)  # [K, 3, P, 2]
    grid = grid.reshape(k * 3, 1, -1, 2)
    out = F.grid_sample(inp, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(k, 3, nf, -1).sum(1).transpose(1, 2)
