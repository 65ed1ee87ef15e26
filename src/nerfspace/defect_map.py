"""Where a part's surface departs from its nearest normals: the defect map.

A field's surface is what it renders (`Shape.surface`): from `VIEWS` views on a sphere about its density
centre, every pixel opaque past one half whose depth is sharp gives the point at its expected depth. Each
normal is turned onto the part by the rotation and shift whose squashed densities overlap best (cosine
over cubes about each density centre, `MAP_EXTENT` RMS radii wide, so shift and scale of a capture
cancel): a coarse search over yaw and tilt, then local refinement. The departure is measured on the
surfaces, both ways, in RMS radii of the part's density: a point of the part far from the surface of every
one of its nearest normals is extra material (a burr), a point of the closest normal far from the part's
surface is missing material (a notch, a hole). The map's peak locates the defect; the mean of its `TOP`
largest departures scores it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import cKDTree

from nerfspace.errors import InputError
from nerfspace.frames import Similarity, yaw_tilt_rotation
from nerfspace.invariant import moments
from nerfspace.probe import Field, query_field, squash
from nerfspace.render import Cameras, camera_rays, cell_centers, orbit_cameras, render_rays

MAP_RES = 48  # voxels per side of the cube
MAP_EXTENT = 2.0  # half side of the cube, in RMS radii of the field's density
BLUR = 1.0  # Gaussian blur of every cube (voxels): compares volumes, not the exact place of each surface
YAW_STEPS = 72  # coarse search: yaws every 5 degrees ...
TILTS_DEG = (15.0, 30.0)  # ... times no tilt and these relative tilts
TILT_AXES = 6  # ... about this many horizontal axes
REFINE_STARTS = 3  # the best coarse candidates refined by gradient ascent ...
REFINE_STEPS = 40  # ... for this many Adam steps
REFINE_LR = 0.02
ALIGN_STRIDE = 3  # the search compares every ALIGN_STRIDE-th voxel per axis
VIEWS = 16  # views of a surface, on a sphere from 75 degrees below to 80 above the horizon ...
VIEW_SIZE = 64  # ... of this many pixels a side
VIEW_DISTANCE = 2.0  # from the density centre (scene units), 40 degrees field of view
OCCUPANCY_RES = 64  # the grid of a field given without one
OPAQUE = 0.5  # a pixel shows the surface where its opacity passes this ...
SPREAD = 0.02  # ... and its depth spreads less than this along the ray (scene units of the part)
TOP = 20  # the score: the mean of this many largest departures


@dataclass(frozen=True)
class DensityCube:
    """Squashed density ``values`` [R, R, R] (indexed x, y, z) on a cube of half side ``half`` about
    ``centre`` [3], in the field's frame."""

    values: torch.Tensor
    centre: torch.Tensor
    half: float

    def points(self, u: torch.Tensor) -> torch.Tensor:
        """Field-frame points of cube coordinates ``u`` [..., 3] in [-1, 1]."""
        return self.centre + self.half * u

    def sample(self, u: torch.Tensor) -> torch.Tensor:
        """Trilinear values at cube coordinates ``u`` [C, N, 3] (0 outside): [C, N]."""
        volume = self.values.permute(2, 1, 0)[None, None]  # grid_sample reads (x, y, z) as (W, H, D)
        grid = u[None, :, :, None, :].float()
        return F.grid_sample(volume, grid, align_corners=False, padding_mode="zeros")[0, 0, :, :, 0]


def cube_coords(res: int = MAP_RES) -> torch.Tensor:
    """[res, res, res, 3] voxel centres of the cube in [-1, 1] coordinates (indexed x, y, z)."""
    t = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2 - 1
    return torch.stack(torch.meshgrid(t, t, t, indexing="ij"), -1)


def _blur(v: torch.Tensor, sigma: float = BLUR) -> torch.Tensor:
    """A separable Gaussian blur of a cube [R, R, R] (zero padding)."""
    radius = math.ceil(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = v[None, None]
    for dim in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = len(t)
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - dim) : 2 * (2 - dim) + 2] = [radius, radius]
        x = F.conv3d(F.pad(x, pad), kernel.reshape(shape))
    return x[0, 0]


def density_cube(field: Field, res: int = MAP_RES) -> DensityCube:
    """The field's squashed density on the cube about its density centre, `MAP_EXTENT` RMS radii wide,
    blurred by `BLUR` voxels."""
    _, _, centre, cov = moments(field)
    half = MAP_EXTENT * float(cov.trace().clamp(min=1e-12).sqrt())
    cube = DensityCube(torch.zeros(res, res, res), centre, half)
    _, sigma = query_field(field, cube.points(cube_coords(res).reshape(-1, 3)))
    return DensityCube(_blur(squash(sigma).reshape(res, res, res)), centre, half)


def _candidates() -> torch.Tensor:
    """[C, 3, 3] rotations of the coarse search: yaws, each without tilt and at every tilt and tilt axis."""
    out = []
    for y in range(YAW_STEPS):
        yaw = 2 * math.pi * y / YAW_STEPS
        out.append(yaw_tilt_rotation(yaw, 0.0, 0.0))
        for tilt in TILTS_DEG:
            for a in range(TILT_AXES):
                out.append(yaw_tilt_rotation(yaw, math.radians(tilt), 2 * math.pi * a / TILT_AXES))
    return torch.stack(out)


def _overlap(
    part: DensityCube, normal: DensityCube, rotations: torch.Tensor, shifts: torch.Tensor, u: torch.Tensor
) -> torch.Tensor:
    """Cosine [C] between the part's density at cube coordinates ``u`` [N, 3] and each moved normal's
    (at ``rotations[c] @ u + shifts[c]``)."""
    target = part.sample(u[None])[0]
    scores = []
    for r, t in zip(rotations.split(128), shifts.split(128), strict=True):
        moved = normal.sample(torch.einsum("cij,nj->cni", r, u) + t[:, None])
        scores.append(moved @ target / (moved.norm(dim=1) * target.norm()).clamp_min(1e-12))
    return torch.cat(scores)


def _skew(w: torch.Tensor) -> torch.Tensor:
    zero = w.new_zeros(())
    return torch.stack(
        [torch.stack([zero, -w[2], w[1]]), torch.stack([w[2], zero, -w[0]]), torch.stack([-w[1], w[0], zero])]
    )


def _refine(
    part: DensityCube, normal: DensityCube, rotation: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Gradient ascent of the overlap from ``rotation`` over a small rotation and a shift: (rotation,
    shift, final cosine)."""
    target = part.sample(u[None])[0]
    w = torch.zeros(3, requires_grad=True)
    t = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([w, t], lr=REFINE_LR)
    for _ in range(REFINE_STEPS):
        r = rotation @ torch.linalg.matrix_exp(_skew(w))
        moved = normal.sample((u @ r.T + t)[None])[0]
        cosine = moved @ target / (moved.norm() * target.norm()).clamp_min(1e-12)
        opt.zero_grad()
        (-cosine).backward()
        opt.step()
    with torch.no_grad():
        r = rotation @ torch.linalg.matrix_exp(_skew(w))
        moved = normal.sample((u @ r.T + t)[None])[0]
        cosine = float(moved @ target / (moved.norm() * target.norm()).clamp_min(1e-12))
    return r.detach(), t.detach(), cosine


def align(part: DensityCube, normal: DensityCube) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation ``R`` [3, 3] and shift ``t`` [3] (cube coordinates): the normal's density at ``R u + t``
    best matches the part's at ``u``. A search over yaw and tilt, then gradient refinement of the
    `REFINE_STARTS` best candidates."""
    res = part.values.shape[0]
    coarse = cube_coords(res)[::ALIGN_STRIDE, ::ALIGN_STRIDE, ::ALIGN_STRIDE].reshape(-1, 3)
    candidates = _candidates()
    overlap = _overlap(part, normal, candidates, torch.zeros(len(candidates), 3), coarse)
    tries = [
        _refine(part, normal, candidates[i], coarse) for i in overlap.topk(REFINE_STARTS).indices.tolist()
    ]
    rotation, shift, _ = max(tries, key=lambda x: x[2])
    return rotation, shift


def part_frame(part: DensityCube, normal: DensityCube) -> Similarity:
    """The map from the normal's frame into the part's that `align` finds."""
    rotation, shift = align(part, normal)
    scale = normal.half / part.half  # part -> normal: x_n = c_n + h_n (R (x_p - c_p) / h_p + t)
    rt = rotation.T
    return Similarity(rt, part.centre - rt @ (normal.centre + normal.half * shift) / scale, 1.0 / scale)


class Shape:
    """A field to map, its occupancy grid [R, R, R] (empty space the renderer skips; when not given, the
    cells of a `OCCUPANCY_RES`³ grid with density, grown by one cell) and its density cube."""

    def __init__(self, field: Field, occupancy: torch.Tensor | None = None) -> None:
        self.field = field
        self.cube = density_cube(field)
        if occupancy is None:
            _, sigma = query_field(field, cell_centers(OCCUPANCY_RES))
            grid = (sigma > 0).float().reshape(1, 1, *(3 * [OCCUPANCY_RES]))
            occupancy = F.max_pool3d(grid, 3, 1, 1)[0, 0]
        self.occupancy = occupancy.bool()

    @property
    def rms(self) -> float:
        """The RMS radius of the field's density: the unit of departures."""
        return self.cube.half / MAP_EXTENT

    @torch.no_grad()
    def surface(self, frame: Similarity, views: int = VIEWS, size: int = VIEW_SIZE) -> torch.Tensor:
        """Points [P, 3] (this field's frame) where ``views`` views of ``size`` px, on a sphere about the
        origin moved into this frame by ``frame``, meet the surface: the expected depth of every pixel
        opaque past `OPAQUE` whose depth is sharp (spread under `SPREAD`)."""
        cams = orbit_cameras(views, size, VIEW_DISTANCE, elevation_deg=(-75.0, 80.0))
        rotation, eye = cams.c2w[..., :3], cams.c2w[..., 3]
        moved = torch.cat([frame.rotation @ rotation, frame.apply(eye)[..., None]], -1)
        origins, dirs = camera_rays(Cameras(moved, cams.focal, size))
        origins, dirs = origins.reshape(views, -1, 3), dirs.reshape(views, -1, 3)
        eyes = origins[:, 0]

        def distance(x: torch.Tensor, net: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # the "colour" of a sample is its distance from the camera, so the rendered colour is depth
            d = (x - eyes[net]).norm(dim=-1, keepdim=True)
            return torch.cat([d, d * d, torch.zeros_like(d)], -1), self.field(x)[1]

        grids = self.occupancy[None].expand(views, -1, -1, -1)
        colour, opacity = render_rays(distance, origins, dirs, grids)
        # the white background adds 1 - opacity to each channel; depth and its spread along the ray
        moment = (colour[..., :2] - (1.0 - opacity)[..., None]) / opacity.clamp_min(1e-6)[..., None]
        depth, spread = moment[..., 0], (moment[..., 1] - moment[..., 0] ** 2).clamp_min(0).sqrt()
        seen = (opacity > OPAQUE) & (spread < SPREAD * frame.scale)
        return origins[seen] + dirs[seen] * depth[seen][:, None]


@dataclass(frozen=True)
class DefectMap:
    """``departure`` [P] at ``points`` [P, 3] of the part's frame (its surface, and the closest normal's
    where material is missing), in RMS radii of the part's density."""

    points: torch.Tensor
    departure: torch.Tensor

    def peak(self) -> torch.Tensor:
        """The point [3] of the largest departure."""
        return self.points[int(self.departure.argmax())]

    def score(self) -> float:
        """How anomalous the part is: the mean of its `TOP` largest departures."""
        return float(self.departure.topk(min(TOP, len(self.departure))).values.mean())


def _nearest(points: np.ndarray, to: np.ndarray) -> np.ndarray:
    """Distance of each of ``points`` to the nearest of ``to`` (inf when ``to`` is empty)."""
    if len(to) == 0:
        return np.full(len(points), np.inf)
    return cKDTree(to).query(points)[0]


def _top(d: np.ndarray) -> float:
    return float(np.sort(d)[-TOP:].mean()) if len(d) else 0.0


def defect_map(part: Shape, normals: Sequence[Shape]) -> DefectMap:
    """Where ``part`` departs from ``normals`` (e.g. its nearest normal parts), in its frame. Every
    normal is seen from the part's views, moved onto it, so both show the same sides."""
    if not normals:
        raise InputError("a defect map needs at least one normal")
    views = Similarity(torch.eye(3), part.cube.centre, 1.0)  # about the part's density centre
    mine = part.surface(views).double().numpy()
    if len(mine) == 0:
        raise InputError("the part has no surface to map")
    extra, missing = np.full(len(mine), np.inf), None
    for normal in normals:
        to_part = part_frame(part.cube, normal.cube)
        theirs = to_part.apply(normal.surface(views.then(to_part.inverted()))).double().numpy()
        if len(theirs) == 0:
            raise InputError("a normal has no surface to map")
        extra = np.minimum(extra, _nearest(mine, theirs))
        gone = (theirs, _nearest(theirs, mine))
        if missing is None or _top(gone[1]) < _top(missing[1]):
            missing = gone  # material is missing only where the closest normal has it
    points = torch.from_numpy(np.concatenate([mine, missing[0]])).float()
    departure = torch.from_numpy(np.concatenate([extra, missing[1]]) / part.rms).float()
    return DefectMap(points, departure)
