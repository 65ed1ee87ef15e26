"""Cameras, rays, stratified sampling, volume rendering and the occupancy grid (pure PyTorch).

Conventions: world space is right-handed with +z up; the scene box is [-SCENE_BOX, SCENE_BOX]^3;
cameras are pinhole, looking at the origin from a sphere; the background is white (1.0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nerfspace.archs import SCENE_BOX

BACKGROUND = 1.0
MIN_TRANSMITTANCE = 1e-4  # samples behind this much opacity get no gradient pass


@dataclass
class Cameras:
    """``V`` pinhole cameras of one image size. ``c2w``: [V, 3, 4] camera-to-world (OpenGL axes:
    the camera looks down its -z axis, +y is up in the image)."""

    c2w: torch.Tensor
    focal: float
    size: int

    def __len__(self) -> int:
        return self.c2w.shape[0]


def look_at(eye: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """[V, 3, 4] camera-to-world matrices for cameras at ``eye`` [V, 3] looking at ``target``."""
    target = torch.zeros_like(eye) if target is None else target
    fwd = torch.nn.functional.normalize(target - eye, dim=-1)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype).expand_as(fwd)
    right = torch.nn.functional.normalize(torch.cross(fwd, up, dim=-1), dim=-1)
    true_up = torch.cross(right, fwd, dim=-1)
    return torch.stack([right, true_up, -fwd, eye], dim=-1)


def orbit_cameras(
    n: int,
    size: int,
    radius: float = 2.0,
    fov_deg: float = 40.0,
    offset: float = 0.0,
    elevation_deg: tuple[float, float] = (-10.0, 60.0),
    azimuth: float = 0.0,
) -> Cameras:
    """``n`` cameras spread over a band of a sphere (golden-angle spiral in azimuth starting at
    ``azimuth`` radians, elevations across ``elevation_deg``). ``offset`` in [0, 1) shifts the spiral
    so held-out views differ from training views. Deterministic."""
    i = torch.arange(n, dtype=torch.float64) + offset
    azim = i * math.pi * (3.0 - math.sqrt(5.0)) + azimuth
    low, high = elevation_deg
    elev = torch.deg2rad(low + (high - low) * (((i + 0.5) / n) % 1.0))
    eye = radius * torch.stack(
        [torch.cos(elev) * torch.cos(azim), torch.cos(elev) * torch.sin(azim), torch.sin(elev)], -1
    )
    focal = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    return Cameras(look_at(eye).float(), focal, size)


def ring_cameras(
    n: int, size: int, elevation_deg: float = 30.0, radius: float = 2.0, fov_deg: float = 40.0
) -> Cameras:
    """``n`` cameras evenly spaced in azimuth (from 0) at one elevation, looking at the origin: turning the
    object about z by a multiple of 360 / n degrees shifts the views cyclically."""
    azim = torch.arange(n, dtype=torch.float64) * (2 * math.pi / n)
    elev = math.radians(elevation_deg)
    eye = radius * torch.stack(
        [
            math.cos(elev) * torch.cos(azim),
            math.cos(elev) * torch.sin(azim),
            torch.full_like(azim, math.sin(elev)),
        ],
        -1,
    )
    focal = 0.5 * size / math.tan(math.radians(fov_deg) / 2)
    return Cameras(look_at(eye).float(), focal, size)


def project(cams: Cameras, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel row, column (continuous, pixel centres at integers) and depth in front of the camera
    of world points ``x`` [P, 3] in every camera: three [V, P] tensors (inverse of `camera_rays`)."""
    rot, eye = cams.c2w[:, :, :3], cams.c2w[:, :, 3]
    p = torch.einsum("vji,vpj->vpi", rot, x[None] - eye[:, None])  # world -> camera axes
    depth = -p[..., 2]
    half = cams.size / 2 - 0.5
    col = cams.focal * p[..., 0] / depth + half
    row = half - cams.focal * p[..., 1] / depth
    return row, col, depth


def camera_rays(cams: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions through pixel centres: two [V, H, W, 3] tensors."""
    s = cams.size
    coords = (torch.arange(s, dtype=torch.float32) + 0.5 - s / 2) / cams.focal
    v, u = torch.meshgrid(coords, coords, indexing="ij")
    d_cam = torch.stack([u, -v, -torch.ones_like(u)], -1)  # row 0 is the top of the image
    dirs = torch.einsum("vij,hwj->vhwi", cams.c2w[:, :, :3], d_cam)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    origins = cams.c2w[:, None, None, :, 3].expand_as(dirs)
    return origins.contiguous(), dirs


# ---- occupancy grid ------------------------------------------------------------------------------
def cell_index(x: torch.Tensor, res: int) -> torch.Tensor:
    """Flat cell index in a res^3 grid over the scene box of world points ``x`` [..., 3] (clamped)."""
    ijk = ((x + SCENE_BOX) / (2 * SCENE_BOX) * res).long().clamp(0, res - 1)
    return (ijk[..., 0] * res + ijk[..., 1]) * res + ijk[..., 2]


def cell_centers(res: int) -> torch.Tensor:
    """[res^3, 3] world centres of the grid cells in `cell_index` order."""
    lin = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2 * SCENE_BOX - SCENE_BOX
    return torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), -1).reshape(-1, 3)


def visual_hull(
    images: torch.Tensor,
    cams: Cameras,
    res: int,
    margin: int = 2,
    half: float = SCENE_BOX,
    min_views: int = 0,
) -> torch.Tensor:
    """[K, R, R, R] cells of a grid over [-half, half]^3 (`cell_index` order) whose centre projects onto a
    foreground pixel (not the white background), dilated by ``margin`` pixels, in every view of ``images``
    [K, V, H, W, 3] that sees it, and that at least ``min_views`` views see: the cells that can hold
    matter at all."""
    k, v, h, w, _ = images.shape
    fg = (images < BACKGROUND).any(-1).float().reshape(k * v, 1, h, w)
    fg = torch.nn.functional.max_pool2d(fg, 2 * margin + 1, stride=1, padding=margin).reshape(k, v, h * w) > 0
    row, col, depth = project(cams, cell_centers(res) * (half / SCENE_BOX))
    inside = (row > -0.5) & (row < h - 0.5) & (col > -0.5) & (col < w - 0.5) & (depth > 0)
    pix = row.round().long().clamp(0, h - 1) * w + col.round().long().clamp(0, w - 1)  # [V, R^3]
    seen = torch.gather(fg, 2, pix.expand(k, -1, -1)) | ~inside  # a cell outside a view is not carved by it
    return (seen.all(1) & (inside.sum(0) >= min_views)).reshape(k, res, res, res)


def pack_bits(occ: torch.Tensor) -> torch.Tensor:
    """Bool grid [..., res, res, res] → uint8 bit-packed [..., res^3 / 8] (little-endian bits)."""
    flat = occ.reshape(*occ.shape[:-3], -1, 8).to(torch.uint8)
    return (flat << torch.arange(8, dtype=torch.uint8)).sum(-1, dtype=torch.uint8)


def unpack_bits(bits: torch.Tensor, res: int) -> torch.Tensor:
    """Inverse of `pack_bits`."""
    b = (bits[..., None] >> torch.arange(8, dtype=torch.uint8)) & 1
    return b.bool().reshape(*bits.shape[:-1], res, res, res)


# ---- volume rendering ----------------------------------------------------------------------------


def box_intersect(
    origins: torch.Tensor,
    dirs: torch.Tensor,
    lo: torch.Tensor | float = -SCENE_BOX,
    hi: torch.Tensor | float = SCENE_BOX,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances of rays [..., 3] into the box [lo, hi] (exit <= entry for a miss)."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0 = (lo - origins) * inv
    t1 = (hi - origins) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far


def occupied_bounds(occupancy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space bounding box [K, 3] (lo, hi) of the occupied cells of [K, R, R, R] grids
    (an empty grid gives an empty box)."""
    k, res = occupancy.shape[0], occupancy.shape[-1]
    cell = 2 * SCENE_BOX / res
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a + 1 for a in range(3) if a != axis)
        hit = occupancy.any(dim=other)  # [K, R]
        idx = torch.arange(res, device=occupancy.device).expand(k, -1)
        lo.append(torch.where(hit, idx, res).amin(1))
        hi.append(torch.where(hit, idx + 1, 0).amax(1))
    lo, hi = torch.stack(lo, -1), torch.stack(hi, -1)
    return lo * cell - SCENE_BOX, hi * cell - SCENE_BOX


def step_size(samples_per_diagonal: int) -> float:
    return 2 * SCENE_BOX * math.sqrt(3.0) / samples_per_diagonal


def render_rays(
    field: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    origins: torch.Tensor,
    dirs: torch.Tensor,
    occupancy: torch.Tensor | None = None,
    samples_per_diagonal: int = 128,
    jitter: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Volume-render rays through K fields at once; only samples in occupied cells are evaluated.

    ``field(x [M, 3], net [M]) -> (rgb [M, 3], sigma [M])`` evaluates packed samples, each of
    field ``net[m]``, grouped by field (no padding; see `nerfspace.fields.packing`);
    ``origins``/``dirs`` [K, N, 3];
    ``occupancy`` [K, R, R, R] bool. Samples are spaced ``step_size(samples_per_diagonal)`` apart
    from the ray's entry into the scene box, offset by ``jitter`` [K, N] in [0, 1) of a step
    (stratified sampling), else by one half. With gradients enabled, samples behind an opacity of
    1 - MIN_TRANSMITTANCE are dropped before the differentiable pass (early ray termination).
    Returns colour [K, N, 3] over the white background and opacity [K, N].
    """
    k, n, _ = origins.shape
    dt = step_size(samples_per_diagonal)
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    offset = jitter.reshape(-1) if jitter is not None else torch.full((k * n,), 0.5, device=o.device)
    # sample i of a ray sits at t = near + (i + offset) * dt from its entry into the scene box; only
    # the samples inside the occupied cells' bounding box are generated
    near, far = box_intersect(o, d)
    first_t, last_t = near, far
    if occupancy is not None:
        lo, hi = occupied_bounds(occupancy)
        first_t, last_t = box_intersect(o, d, lo.repeat_interleave(n, 0), hi.repeat_interleave(n, 0))
    i0 = ((first_t - near) / dt - offset).ceil().clamp(min=0)
    n_steps = (((last_t - near) / dt - offset).ceil() - i0).clamp(min=0).long()

    # packed samples, grouped by ray: ray r owns n_steps[r] consecutive samples
    ray = torch.repeat_interleave(torch.arange(k * n, device=o.device), n_steps)
    first = torch.cumsum(n_steps, 0) - n_steps
    t = near[ray] + (torch.arange(ray.shape[0], device=o.device) - first[ray] + i0[ray] + offset[ray]) * dt
    pts = o[ray] + t[:, None] * d[ray]
    net = torch.div(ray, n, rounding_mode="floor")
    if occupancy is not None:
        res = occupancy.shape[-1]
        live = occupancy.reshape(k, -1)[net, cell_index(pts, res)]
        ray, pts, net = ray[live], pts[live], net[live]
    if torch.is_grad_enabled():
        # early ray termination: a gradient-free pass finds the samples hidden behind opaque matter
        with torch.no_grad():
            _, sigma = field(pts, net)
            keep = _transmittance(sigma * dt, ray, k * n) > MIN_TRANSMITTANCE
        ray, pts, net = ray[keep], pts[keep], net[keep]

    rgb, sigma = field(pts, net)
    tau = sigma * dt
    weights = _transmittance(tau, ray, k * n) * (1.0 - torch.exp(-tau))
    opacity = o.new_zeros(k * n).index_add(0, ray, weights)
    color = o.new_zeros(k * n, 3).index_add(0, ray, weights[:, None] * rgb)
    color = color + (1.0 - opacity[:, None]) * BACKGROUND
    return color.reshape(k, n, 3), opacity.reshape(k, n)


def _transmittance(tau: torch.Tensor, ray: torch.Tensor, n_rays: int) -> torch.Tensor:
    """Transmittance before each packed sample (samples grouped by ray, in ray order), from an
    exclusive cumulative sum of optical depth ``tau`` (in float64: the sum runs over all rays)."""
    if ray.numel() == 0:
        return tau
    excl = torch.cumsum(tau.double(), 0) - tau.double()
    counts = torch.bincount(ray, minlength=n_rays)
    first = (torch.cumsum(counts, 0) - counts).clamp(max=ray.shape[0] - 1)
    return torch.exp(-(excl - excl[first][ray])).float()


def render_images(
    field: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    k: int,
    cams: Cameras,
    occupancy: torch.Tensor | None = None,
    samples_per_diagonal: int = 128,
    chunk: int = 4096,
) -> torch.Tensor:
    """Render K fields from the same cameras, without gradients → [K, V, H, W, 3]."""
    o, d = camera_rays(cams)
    shape = o.shape[:-1]
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    out = []
    with torch.no_grad():
        for i in range(0, o.shape[0], chunk):
            oi, di = o[i : i + chunk].expand(k, -1, -1), d[i : i + chunk].expand(k, -1, -1)
            out.append(render_rays(field, oi, di, occupancy, samples_per_diagonal)[0])
    return torch.cat(out, 1).reshape(k, *shape, 3)
