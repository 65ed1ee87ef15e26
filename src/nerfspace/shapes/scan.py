"""Scans of procedural objects, as a depth sensor or a splatting pipeline would give them: surface points
seen from a few scanner positions (denser where a scanner looks straight at the surface, none where no
scanner sees), with range noise and the colour the object shows under its light; and flat Gaussian
splats on those points, oriented by the surface normal. For measuring how NeRFs of other families of
one object land in the space (benchmarks/cross_family.py); written with `splat_files.write_*`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nerfspace.render import Cameras, camera_rays, look_at
from nerfspace.shapes.sdf import SDFObject
from nerfspace.shapes.trace import sdf_normals, shaded_color, surface_hits

SCANNER_RADIUS = 2.0


@dataclass(frozen=True)
class Scan:
    """Surface points [N, 3], their unit normals [N, 3] and colours [N, 3] (in the object's frame)."""

    points: Tensor
    normals: Tensor
    colors: Tensor


def scan(obj: SDFObject, seed: int, scanners: int = 8, resolution: int = 96, noise: float = 0.004) -> Scan:
    """Points of ``obj`` seen from ``scanners`` random positions on a sphere around it, one ray per pixel
    of a ``resolution``-pixel view each; ``noise`` is the standard deviation of the range error along
    each ray (scene units), and colours carry 2 % noise."""
    gen = torch.Generator().manual_seed(seed)
    az = torch.rand(scanners, generator=gen, dtype=torch.float64) * 2 * math.pi
    el = torch.asin(torch.rand(scanners, generator=gen, dtype=torch.float64) * 1.6 - 0.6)  # -37 to 90 deg
    eye = SCANNER_RADIUS * torch.stack([el.cos() * az.cos(), el.cos() * az.sin(), el.sin()], -1).float()
    cams = Cameras(look_at(eye), focal=resolution / (2 * math.tan(math.radians(20))), size=resolution)
    origins, dirs = (t.reshape(-1, 3) for t in camera_rays(cams))
    hit, points = surface_hits(obj, origins, dirs)
    o, d, points = origins[hit], dirs[hit], points[hit]
    depth = (points - o).norm(dim=-1) + noise * torch.randn(len(d), generator=gen)
    colors = shaded_color(obj, points) + 0.02 * torch.randn(len(d), 3, generator=gen)
    return Scan(o + depth[:, None] * d, sdf_normals(obj, points), colors.clamp(0, 1))


def disc_splats(
    s: Scan, neighbours: int = 4, size: float = 0.5, flatness: float = 0.1, opacity: float = 0.9
) -> dict[str, Tensor]:
    """Flat Gaussians on a scan's points, as a splatting pipeline makes them: in-plane standard deviation
    ``size`` times the mean distance to the ``neighbours`` nearest points, ``flatness`` times that along
    the normal, the scan's colours: ``means``, ``scales``, ``rotations`` (quaternions w, x, y, z turning
    +z onto the normal), ``opacities``, ``colors``."""
    from scipy.spatial import cKDTree

    pts = s.points.double().numpy()
    dist, _ = cKDTree(pts).query(pts, neighbours + 1)
    radius = size * torch.from_numpy(dist[:, 1:].mean(1)).float()
    n = s.normals
    w = 1 + n[:, 2]
    quats = torch.stack([w, -n[:, 1], n[:, 0], torch.zeros_like(w)], -1)
    quats[w < 1e-6] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # a normal along -z: half a turn about x
    scales = torch.stack([radius, radius, flatness * radius], -1)
    return {
        "means": s.points,
        "scales": scales,
        "rotations": torch.nn.functional.normalize(quats, dim=-1),
        "opacities": torch.full((len(pts),), opacity),
        "colors": s.colors,
    }
