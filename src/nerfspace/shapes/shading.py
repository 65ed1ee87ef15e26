"""The one shading model of ground-truth views: Lambertian under one directional light, no shadows, so a
colour depends on position only and a NeRF without view dependence can reproduce it:
colour = albedo * (AMBIENT + DIFFUSE * max(0, n . l))."""

from __future__ import annotations

from torch import Tensor

AMBIENT, DIFFUSE = 0.35, 0.65


def lambert(albedo: Tensor, normals: Tensor, light: Tensor) -> Tensor:
    """Shaded colour [N, 3] of surface points with ``albedo`` [N, 3] and unit ``normals`` [N, 3] under the
    unit direction ``light`` [3] towards the light."""
    return albedo * (AMBIENT + DIFFUSE * (normals @ light.to(normals)).clamp_min(0))[:, None]
