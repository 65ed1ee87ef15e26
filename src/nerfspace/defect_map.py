"""Where a part's field departs from its nearest normals: the defect map.

Every field is read as squashed density on a cube about its own density centre, `MAP_EXTENT` RMS radii
wide, so shift and scale of a capture cancel. Each normal is turned onto the part by the rotation whose
density overlaps the part's best (cosine over the cube): a coarse search over yaw and tilt, then local
refinement. The departure at a voxel is the smallest absolute density difference to any of the turned
normals (a voxel departs only where it departs from all of them), lightly blurred; its peak locates the
defect, in the part's own frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nerfspace.frames import yaw_tilt_rotation
from nerfspace.invariant import moments
from nerfspace.probe import Field, query_field, squash

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


def density_cube(
    field: Field, res: int = MAP_RES, frame: tuple[torch.Tensor, float, torch.Tensor] | None = None
) -> DensityCube:
    """The field's squashed density on the cube about its density centre (or on ``frame``: a centre, half
    side and rotation [3, 3] of cube coordinates), blurred by `BLUR` voxels."""
    if frame is None:
        _, _, centre, cov = moments(field)
        frame = (centre, MAP_EXTENT * float(cov.trace().clamp(min=1e-12).sqrt()), torch.eye(3))
    centre, half, rotation = frame
    cube = DensityCube(torch.zeros(res, res, res), centre, half)
    _, sigma = query_field(field, cube.points(cube_coords(res).reshape(-1, 3) @ rotation.T))
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


@dataclass(frozen=True)
class DefectMap:
    """``departure`` [R, R, R] on the part's cube (indexed x, y, z), and that cube."""

    departure: torch.Tensor
    cube: DensityCube

    def peak(self) -> torch.Tensor:
        """The field-frame point [3] of the largest departure."""
        res = self.departure.shape[0]
        i = int(self.departure.argmax())
        index = torch.tensor([i // (res * res), (i // res) % res, i % res])
        return self.cube.points((index.float() + 0.5) / res * 2 - 1)

    def voxel_points(self) -> torch.Tensor:
        """[R, R, R, 3] field-frame centres of the map's voxels."""
        return self.cube.points(cube_coords(self.departure.shape[0]))


def defect_map(part: Field, normals: Sequence[Field]) -> DefectMap:
    """Where ``part`` departs from all of ``normals`` (e.g. its nearest normal parts), in its frame."""
    cube = density_cube(part)
    departures = []
    for normal in normals:
        other = density_cube(normal)
        rotation, shift = align(cube, other)
        # read the normal's field itself on the turned cube: resampling its blurred cube would blur again
        turned = density_cube(normal, frame=(other.points(shift), other.half, rotation))
        departures.append((cube.values - turned.values).abs())
    return DefectMap(torch.stack(departures).amin(0), cube)
