"""Exact ground truth from the SDF: sphere tracing, shading (`shapes.shading`, with the object's world
light `SDFObject.light`), and the contact sheets. `render_views` renders meshes, splats and photos too."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from nerfspace.archs import SCENE_BOX
from nerfspace.render import BACKGROUND, Cameras, box_intersect, camera_rays, look_at
from nerfspace.shapes.categories import CATEGORIES, make_object
from nerfspace.shapes.mesh import MeshObject
from nerfspace.shapes.parts import DEFECTS, PARTS, make_part
from nerfspace.shapes.photos import Photos
from nerfspace.shapes.sdf import SDFObject
from nerfspace.shapes.shading import lambert
from nerfspace.shapes.splats import Splats

HIT_EPS = 1e-3  # a ray hits once the distance falls below this
MAX_STEPS = 96  # exact SDF evaluations per ray at most
GRID_RES = 40  # vertices per side of the coarse distance grid used to skip empty space
NORMAL_EPS = 1e-3  # central-difference step for normals


def sdf_normals(obj: SDFObject, x: Tensor) -> Tensor:
    """Unit normals [N, 3]: normalised central-difference gradient of the SDF at ``x`` [N, 3]."""
    offsets = NORMAL_EPS * torch.eye(3, dtype=x.dtype, device=x.device)
    probes = torch.cat([x[:, None] + offsets, x[:, None] - offsets], dim=1)  # [N, 6, 3]
    d = obj.sdf(probes.reshape(-1, 3)).view(-1, 2, 3)
    return torch.nn.functional.normalize(d[:, 0] - d[:, 1], dim=-1)


def shaded_color(obj: SDFObject, x: Tensor) -> Tensor:
    """Shaded colour [N, 3] at points ``x`` [N, 3], exactly as the sphere tracer shades a hit there."""
    return lambert(obj.albedo(x), sdf_normals(obj, x), obj.light)


class _CoarseBound:
    """Lower bound of the SDF from a coarse grid of exact values: sdf(p) >= sdf(v) - |p - v| for the
    nearest vertex v (the SDF is 1-Lipschitz). It lets rays cross empty space without exact evaluations."""

    def __init__(self, obj: SDFObject, box: Tensor) -> None:
        axes = [torch.linspace(float(box[0, i]), float(box[1, i]), GRID_RES) for i in range(3)]
        vertices = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        self.values = obj.sdf(vertices.to(box.device)).view(GRID_RES, GRID_RES, GRID_RES)
        self.low, self.step = box[0], (box[1] - box[0]) / (GRID_RES - 1)
        self.tolerance = 0.5 * float(self.step.min())

    def __call__(self, p: Tensor) -> Tensor:
        idx = ((p - self.low) / self.step).round().clamp(0, GRID_RES - 1)
        i, j, k = idx.long().unbind(-1)
        return self.values[i, j, k] - (p - (self.low + idx * self.step)).norm(dim=-1)


def _advance(
    distance: Callable[[Tensor], Tensor],
    origins: Tensor,
    dirs: Tensor,
    t: Tensor,
    t_end: Tensor,
    eps: float,
    max_steps: int,
) -> tuple[Tensor, Tensor]:
    """Sphere-trace rays with the lower bound ``distance`` until it falls below ``eps`` or the ray passes
    ``t_end``; only rays still marching are evaluated. Returns the final t and the stopped-near mask."""
    t, near = t.clone(), torch.zeros_like(t, dtype=torch.bool)
    live = torch.nonzero(t < t_end).squeeze(1)
    for _ in range(max_steps):
        if live.numel() == 0:
            break
        dist = distance(origins[live] + t[live, None] * dirs[live])
        stop = dist < eps
        near[live[stop]] = True
        t[live] += torch.where(stop, 0.0, dist)
        live = live[~stop & (t[live] < t_end[live])]
    return t, near


def surface_hits(obj: SDFObject, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Hit mask [N] and hit points [N, 3] of rays [N, 3]: cross empty space on the coarse bound, then
    sphere-trace the exact SDF (at most MAX_STEPS evaluations per ray) until it is below HIT_EPS."""
    scene = torch.tensor([[-SCENE_BOX] * 3, [SCENE_BOX] * 3])
    box = torch.stack([obj.bounds[0].maximum(scene[0]), obj.bounds[1].minimum(scene[1])]).to(origins.device)
    t, t_end = box_intersect(origins, dirs, box[0], box[1])
    coarse = _CoarseBound(obj, box)
    t, _ = _advance(coarse, origins, dirs, t, t_end, coarse.tolerance, 4 * GRID_RES)
    t, hit = _advance(obj.sdf, origins, dirs, t, t_end, HIT_EPS, MAX_STEPS)
    return hit, origins + t[:, None] * dirs


@torch.no_grad()
def sphere_trace(obj: SDFObject, origins: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Render rays (``origins``, unit ``dirs`` [..., 3]) against the object: rgb [..., 3] (white where
    missed) and alpha [...] (1.0 on a hit, else 0.0). Rays start where they enter the object's bounding
    box (inside the scene box [-SCENE_BOX, SCENE_BOX]^3)."""
    shape = origins.shape[:-1]
    o, d = origins.reshape(-1, 3).float(), dirs.reshape(-1, 3).float()
    hit, points = surface_hits(obj, o, d)
    rgb = torch.full_like(o, BACKGROUND)
    if hit.any():
        rgb[hit] = shaded_color(obj, points[hit])
    return rgb.view(*shape, 3), hit.float().view(shape)


Subject = SDFObject | MeshObject | Splats | Photos  # what ground-truth views are made of


def render_views(obj: Subject, cams: Cameras) -> Tensor:
    """Ground-truth images [V, H, W, 3] (float32, white background) of the object from ``cams`` (meshes,
    splats and photos render themselves)."""
    if not isinstance(obj, SDFObject):
        return obj.render(cams)
    origins, dirs = camera_rays(cams)
    return sphere_trace(obj, origins, dirs)[0]


def preview_camera(
    size: int,
    azimuth_deg: float = 40.0,
    elevation_deg: float = 25.0,
    radius: float = 2.0,
    fov_deg: float = 40.0,
) -> Cameras:
    """One camera looking at the origin from a three-quarter front view (front is +x before the yaw)."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    eye = radius * torch.tensor([[math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]])
    return Cameras(look_at(eye), 0.5 * size / math.tan(math.radians(fov_deg) / 2), size)


def _sheet(
    path: str | Path, rows: dict[str, list[SDFObject]], size: int, header: list[str] | None = None
) -> None:
    """Write a PNG grid of preview renders: one row per entry of ``rows`` (its name on the left), column
    titles from ``header`` when given."""
    label_w, top = 84, 14 if header else 0
    cols = max(len(objs) for objs in rows.values())
    sheet = Image.new("RGB", (label_w + cols * size, top + len(rows) * size), "white")
    draw = ImageDraw.Draw(sheet)
    for col, title in enumerate(header or []):
        draw.text((label_w + col * size + 4, 2), title, fill="black")
    cam = preview_camera(size)
    for row, (name, objs) in enumerate(rows.items()):
        draw.text((4, top + row * size + size // 2 - 5), name, fill="black")
        for col, obj in enumerate(objs):
            image = render_views(obj, cam)[0]
            tile = Image.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8))
            sheet.paste(tile, (label_w + col * size, top + row * size))
    sheet.save(path, optimize=True)


def contact_sheet(path: str | Path, per_category: int = 4, size: int = 96) -> None:
    """Write a PNG grid: one row per category (name on the left), seeds 0..per_category-1 across."""
    _sheet(path, {c: [make_object(c, seed) for seed in range(per_category)] for c in CATEGORIES}, size)


def parts_sheet(path: str | Path, severity: float | str = "high", seed: int = 0, size: int = 112) -> None:
    """Write a PNG grid: one row per machine part, its normal instance ``seed`` and every defect across."""
    rows = {
        part: [make_part(part, seed)[0]] + [make_part(part, seed, d, severity)[0] for d in DEFECTS]
        for part in PARTS
    }
    _sheet(path, rows, size, ["normal", *DEFECTS])
