"""Signed distance primitives, their assembly into objects, and the object's fields (vectorised PyTorch).

Primitives are written in their local frame, on coordinate tensors. An `Assembly` places primitives
(rotation, translation, optional half-space clips) in a canonical frame (+z up, ground near z = 0, front
towards +x) and normalises size and yaw; its `SDFObject` evaluates all parts of one kind in one batched
pass and blends them with a smooth union (which also blends the part colours), then removes the
assembly's cuts (holes, notches, dents) with a hard difference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from nerfspace.frames import Similarity, box_corners

# Volume density for distillation: SIGMA_MAX * sigmoid(-sdf / BETA). Rays grazing a surface at distance s
# still collect ~SIGMA_MAX * exp(-s / BETA) per unit length, so a wide BETA fattens silhouettes and thin
# parts: on 10 objects rendered with 1024 samples per ray, silhouette IoU against the sphere tracer is 0.78
# for (400, 0.004), 0.94 for (400, 0.0015); parts 0.008 thick still get an optical depth of about 3.
SIGMA_MAX = 400.0  # volume density well inside an object (per scene unit)
BETA = 0.0015  # width of the density's fall-off across the surface (scene units)
CHUNK = 8192  # points per batched evaluation: keeps the [parts, points] temporaries in cache
LIGHT_DIR = torch.nn.functional.normalize(torch.tensor([0.4, 0.3, 0.85]), dim=0)  # the canonical light

Vec = Sequence[float] | np.ndarray
Clip = tuple[Vec, Vec]  # (normal, point), canonical frame: keep the side where (x - point) . normal <= 0

# ---------------------------------------------------------------------------------------------------------
# Primitives, in their local frame. Points come as three coordinate tensors ``q = (x, y, z)`` and sizes as
# tensors, all of one broadcast shape: component-wise ops vectorise far better on CPU than reductions over a
# trailing axis of size 3. Revolution axes are along local z.

Coords = tuple[Tensor, Tensor, Tensor]


def _length(*c: Tensor) -> Tensor:
    return sum(ci * ci for ci in c).sqrt()


def sd_sphere(q: Coords, radius: Tensor) -> Tensor:
    """Sphere of ``radius`` centred at the origin."""
    return _length(*q) - radius


def sd_box(q: Coords, half: Coords) -> Tensor:
    """Axis-aligned box with half sizes ``half`` = (hx, hy, hz)."""
    d = [qi.abs() - hi for qi, hi in zip(q, half, strict=True)]
    inside = torch.maximum(torch.maximum(d[0], d[1]), d[2]).clamp_max(0)
    return _length(*(di.clamp_min(0) for di in d)) + inside


def sd_round_box(q: Coords, half: Coords, radius: Tensor) -> Tensor:
    """Box of half sizes ``half`` whose edges are rounded with ``radius``."""
    return sd_box(q, tuple(h - radius for h in half)) - radius


def sd_cylinder(q: Coords, radius: Tensor, half_height: Tensor) -> Tensor:
    """Capped cylinder around the z axis, from -half_height to +half_height."""
    dr = _length(q[0], q[1]) - radius
    dz = q[2].abs() - half_height
    return _length(dr.clamp_min(0), dz.clamp_min(0)) + torch.maximum(dr, dz).clamp_max(0)


def sd_capsule(q: Coords, half_length: Tensor, radius: Tensor) -> Tensor:
    """Capsule around the segment z in [-half_length, half_length]."""
    return _length(q[0], q[1], (q[2].abs() - half_length).clamp_min(0)) - radius


def sd_torus(q: Coords, major: Tensor, minor: Tensor) -> Tensor:
    """Torus in the xy plane: ring radius ``major``, tube radius ``minor``."""
    return _length(_length(q[0], q[1]) - major, q[2]) - minor


def sd_ellipsoid(q: Coords, radii: Coords) -> Tensor:
    """Ellipsoid with semi-axes ``radii``; a conservative bound (exact on the surface)."""
    smallest = torch.minimum(torch.minimum(radii[0], radii[1]), radii[2])
    return (_length(*(qi / ri for qi, ri in zip(q, radii, strict=True))) - 1.0) * smallest


def sd_cone(q: Coords, half_height: Tensor, r_bottom: Tensor, r_top: Tensor) -> Tensor:
    """Capped cone (frustum) around z: radius ``r_bottom`` at z = -half_height, ``r_top`` at +half_height."""
    rho, z = _length(q[0], q[1]), q[2]
    cap_r = (rho - torch.where(z < 0, r_bottom, r_top)).clamp_min(0)
    cap_z = z.abs() - half_height
    er, ez = r_top - r_bottom, 2 * half_height  # side edge, from (r_bottom, -h) to (r_top, h)
    pr, pz = rho - r_bottom, z + half_height
    s = ((pr * er + pz * ez) / (er * er + ez * ez)).clamp(0, 1)
    dist = torch.minimum(cap_r * cap_r + cap_z * cap_z, (pr - s * er) ** 2 + (pz - s * ez) ** 2).sqrt()
    inside = (cap_z < 0) & (pr * ez - pz * er < 0)
    return torch.where(inside, -dist, dist)


def smooth_union(d: Tensor, k: float, dim: int = 0) -> tuple[Tensor, Tensor]:
    """Smooth minimum over ``dim`` (log-sum-exp of width ``k``) and the matching soft-argmin weights.
    The value is never above the hard union and is 1-Lipschitz, so it stays safe for sphere tracing.
    Exponents are clamped at -60 to keep out of denormals (slow on CPUs); the error is below 1e-26."""
    nearest = d.amin(dim=dim, keepdim=True)
    e = ((nearest - d) / k).clamp_min(-60.0).exp()
    total = e.sum(dim=dim, keepdim=True)
    return (nearest - k * total.log()).squeeze(dim), e / total


# ---------------------------------------------------------------------------------------------------------
# Transforms (canonical frame, numpy)


def rot_x(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about x."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about y."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    """Rotation by ``a`` radians about z."""
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def along(direction: str | Vec) -> np.ndarray:
    """A rotation taking the local z axis to ``direction`` ("x", "y", "z" or a vector)."""
    d = np.asarray(_AXES[direction] if isinstance(direction, str) else direction, dtype=float)
    d = d / np.linalg.norm(d)
    helper = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, d)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(d, x), d])


# ---------------------------------------------------------------------------------------------------------
# Kinds of parts: batched distance (local coordinates, each [K, N]; sizes [K, P]) and local half extents


@dataclass(frozen=True)
class Kind:
    """One primitive kind: its batched distance and the half extents of its local bounding box."""

    distance: Callable[[Coords, Tensor], Tensor]
    half_extent: Callable[[np.ndarray], np.ndarray]


def _cols(p: Tensor, *idx: int) -> tuple[Tensor, ...]:
    return tuple(p[:, i, None] for i in idx)


KINDS: dict[str, Kind] = {
    "box": Kind(lambda q, p: sd_box(q, _cols(p, 0, 1, 2)), lambda p: p[:3]),
    "round_box": Kind(lambda q, p: sd_round_box(q, _cols(p, 0, 1, 2), p[:, 3, None]), lambda p: p[:3]),
    "cylinder": Kind(lambda q, p: sd_cylinder(q, *_cols(p, 0, 1)), lambda p: p[[0, 0, 1]]),
    "capsule": Kind(lambda q, p: sd_capsule(q, *_cols(p, 0, 1)), lambda p: p[[1, 1, 1]] + [0, 0, p[0]]),
    "sphere": Kind(lambda q, p: sd_sphere(q, *_cols(p, 0)), lambda p: p[[0, 0, 0]]),
    "torus": Kind(lambda q, p: sd_torus(q, *_cols(p, 0, 1)), lambda p: p[[0, 0, 1]] + [p[1], p[1], 0]),
    "ellipsoid": Kind(lambda q, p: sd_ellipsoid(q, _cols(p, 0, 1, 2)), lambda p: p[:3]),
    "cone": Kind(lambda q, p: sd_cone(q, *_cols(p, 0, 1, 2)), lambda p: p[[1, 1, 0]].clip(p[[2, 2, 0]])),
}


@dataclass(frozen=True)
class Part:
    """One placed primitive: sizes (lengths), local-to-world rotation, centre, colour role, and clips as
    local half-spaces ``q . normal <= offset``."""

    kind: str
    sizes: np.ndarray
    rot: np.ndarray
    center: np.ndarray
    color: int
    clips: tuple[tuple[np.ndarray, float], ...] = ()

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World bounding box of the unclipped primitive."""
        half = np.abs(self.rot) @ KINDS[self.kind].half_extent(self.sizes)
        return self.center - half, self.center + half


# ---------------------------------------------------------------------------------------------------------
# Assembly (canonical frame) → SDFObject


@dataclass(frozen=True)
class Placement:
    """``x -> scale * rot @ (x - centre)``: how `Assembly.placed` centres, scales and yaws an assembly."""

    centre: np.ndarray
    scale: float
    rot: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Points [..., 3] of the assembly's frame in the placed frame."""
        return self.scale * (np.asarray(x, dtype=float) - self.centre) @ self.rot.T

    def part(self, p: Part) -> Part:
        """``p`` moved by this placement."""
        clips = tuple((n, o * self.scale) for n, o in p.clips)
        return Part(p.kind, p.sizes * self.scale, self.rot @ p.rot, self.apply(p.center), p.color, clips)


class Assembly:
    """Parts placed in the canonical frame; ``placed`` normalises size and yaw, ``to_object`` packs it.
    ``cuts`` (an assembly of its own, built with the same methods) is removed from the solid."""

    def __init__(self, parts: Sequence[Part] = (), cuts: Sequence[Part] = (), solid: bool = True) -> None:
        self.parts = list(parts)
        self.cuts = Assembly(cuts, solid=False) if solid else None

    def add(
        self,
        kind: str,
        sizes: Vec,
        center: Vec,
        rot: np.ndarray | None = None,
        color: int = 0,
        clips: Sequence[Clip] = (),
    ) -> None:
        """Add a primitive of ``kind``; ``clips`` are canonical-frame half-spaces (normal, point) to keep."""
        rot = np.eye(3) if rot is None else np.asarray(rot, dtype=float)
        center = np.asarray(center, dtype=float)
        local = []
        for normal, point in clips:
            n = np.asarray(normal, dtype=float) / np.linalg.norm(normal)
            local.append((rot.T @ n, float(n @ (np.asarray(point, dtype=float) - center))))
        self.parts.append(Part(kind, np.asarray(sizes, dtype=float), rot, center, color, tuple(local)))

    def box(
        self,
        center: Vec,
        half: Vec,
        color: int = 0,
        rot: np.ndarray | None = None,
        radius: float = 0.0,
        clips: Sequence[Clip] = (),
    ) -> None:
        """Box of half sizes ``half``; edges rounded by ``radius`` when it is positive."""
        if radius > 0:
            radius = min(radius, 0.95 * min(half))
            self.add("round_box", [*half, radius], center, rot, color, clips)
        else:
            self.add("box", half, center, rot, color, clips)

    def beam(self, a: Vec, b: Vec, half_width: float, color: int = 0) -> None:
        """Square-section bar from point ``a`` to point ``b``."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        half = [half_width, half_width, np.linalg.norm(b - a) / 2]
        self.add("box", half, (a + b) / 2, along(b - a), color)

    def cylinder(
        self,
        center: Vec,
        radius: float,
        half_height: float,
        axis: str | Vec = "z",
        color: int = 0,
        clips: Sequence[Clip] = (),
    ) -> None:
        """Capped cylinder around ``axis`` through ``center``."""
        self.add("cylinder", [radius, half_height], center, along(axis), color, clips)

    def rod(self, a: Vec, b: Vec, radius: float, color: int = 0) -> None:
        """Capped cylinder from point ``a`` to point ``b``."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        self.add("cylinder", [radius, np.linalg.norm(b - a) / 2], (a + b) / 2, along(b - a), color)

    def capsule(self, a: Vec, b: Vec, radius: float, color: int = 0) -> None:
        """Capsule from point ``a`` to point ``b``."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        self.add("capsule", [np.linalg.norm(b - a) / 2, radius], (a + b) / 2, along(b - a), color)

    def cone(self, a: Vec, b: Vec, radius_a: float, radius_b: float, color: int = 0) -> None:
        """Frustum from point ``a`` (radius ``radius_a``) to point ``b`` (radius ``radius_b``)."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        self.add("cone", [np.linalg.norm(b - a) / 2, radius_a, radius_b], (a + b) / 2, along(b - a), color)

    def sphere(self, center: Vec, radius: float, color: int = 0) -> None:
        """Sphere."""
        self.add("sphere", [radius], center, None, color)

    def torus(
        self,
        center: Vec,
        major: float,
        minor: float,
        axis: str | Vec = "z",
        color: int = 0,
        clips: Sequence[Clip] = (),
    ) -> None:
        """Torus whose ring lies in the plane normal to ``axis``."""
        self.add("torus", [major, minor], center, along(axis), color, clips)

    def ellipsoid(
        self,
        center: Vec,
        radii: Vec,
        color: int = 0,
        rot: np.ndarray | None = None,
        clips: Sequence[Clip] = (),
    ) -> None:
        """Ellipsoid with semi-axes ``radii``."""
        self.add("ellipsoid", radii, center, rot, color, clips)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Canonical-frame bounding box of all parts (clips ignored, so conservative)."""
        boxes = [p.bounds() for p in self.parts]
        return np.min([lo for lo, _ in boxes], axis=0), np.max([hi for _, hi in boxes], axis=0)

    def placement(self, longest: float, yaw: float, max_half: float = 0.58) -> Placement:
        """Centring, scaling so the longest side is ``longest`` (less where needed to stay inside
        [-max_half, max_half]^3 after the yaw), and rotating by ``yaw`` radians about z."""
        lo, hi = self.bounds()
        extent, rz = hi - lo, rot_z(yaw)
        scale = min(longest / extent.max(), 2 * max_half / (np.abs(rz) @ extent).max())
        return Placement((lo + hi) / 2, float(scale), rz)

    def moved(self, placement: Placement) -> Assembly:
        """A copy moved by ``placement`` (cuts too)."""
        cuts = self.cuts.parts if self.cuts is not None else ()
        return Assembly([placement.part(p) for p in self.parts], [placement.part(p) for p in cuts])

    def placed(self, longest: float, yaw: float, max_half: float = 0.58) -> Assembly:
        """Centred copy, scaled and yawed by `placement`."""
        return self.moved(self.placement(longest, yaw, max_half))

    def to_object(self, category: str, seed: int, palette: np.ndarray, blend: float) -> SDFObject:
        """Pack into an `SDFObject`; part colour role ``c`` takes ``palette[c % len(palette)]``."""
        packed = PartSet(self.parts)
        albedo = np.array([palette[p.color % len(palette)] for p in packed.parts])
        lo, hi = self.bounds()
        pad = 0.01 + blend * np.log(len(self.parts))
        return SDFObject(
            category,
            seed,
            packed,
            torch.tensor(albedo, dtype=torch.float32),
            blend,
            torch.tensor(np.stack([lo - pad, hi + pad]), dtype=torch.float32),
            cuts=PartSet(self.cuts.parts) if self.cuts is not None and self.cuts.parts else None,
        )


class PartSet:
    """Parts packed by kind for batched evaluation: one matrix product and a few tensor ops per kind.
    ``parts`` holds them in evaluation order (sorted by kind), the order of the rows of `distances`."""

    def __init__(self, parts: Sequence[Part]) -> None:
        f32 = torch.float32
        self.parts = parts = sorted(parts, key=lambda p: p.kind)
        self.groups: list[tuple[Kind, Tensor, Tensor, Tensor]] = []
        for name in dict.fromkeys(p.kind for p in parts):
            group = [p for p in parts if p.kind == name]
            rot = np.stack([p.rot for p in group])  # [K, 3, 3], local to world
            to_local = rot.transpose(0, 2, 1).reshape(-1, 3)  # [3K, 3]: rows are the local axes
            offset = np.einsum("kj,kji->ki", np.stack([p.center for p in group]), rot)[:, :, None]
            sizes = np.stack([p.sizes for p in group])
            tensors = (torch.tensor(a, dtype=f32) for a in (to_local, offset, sizes))
            self.groups.append((KINDS[name], *tensors))
        # Clips as world half-spaces x . n <= c, applied to their part with a max.
        clips = [(k, p.rot @ n, o + (p.rot @ n) @ p.center) for k, p in enumerate(parts) for n, o in p.clips]
        self.clip_part = torch.tensor([k for k, _, _ in clips], dtype=torch.long)
        self.clip_normal = torch.tensor(np.array([n for _, n, _ in clips]).reshape(-1, 3), dtype=f32)
        self.clip_offset = torch.tensor([[c] for _, _, c in clips], dtype=f32).reshape(-1, 1)

    def distances(self, x: Tensor) -> Tensor:
        """Distance of points ``x`` [N, 3] to every part: [K, N]."""
        xt, dev = x.T.to(torch.float32).contiguous(), x.device
        out = []
        for kind, to_local, offset, sizes in self.groups:
            q = (to_local.to(dev) @ xt).view(-1, 3, xt.shape[1]) - offset.to(dev)
            out.append(kind.distance((q[:, 0], q[:, 1], q[:, 2]), sizes.to(dev)))
        d = torch.cat(out) if len(out) > 1 else out[0]
        if self.clip_part.numel():
            planes = self.clip_normal.to(dev) @ xt - self.clip_offset.to(dev)
            d = d.scatter_reduce(0, self.clip_part.to(dev)[:, None].expand_as(planes), planes, reduce="amax")
        return d


@dataclass(frozen=True, eq=False)
class SDFObject:
    """A procedural object: signed distance, albedo and density fields over world points [N, 3]
    (any float dtype and device; results are float32 on the points' device). ``pose`` places the
    canonical object in the world (a capture's frame); ``light`` is the unit direction towards the light."""

    category: str
    seed: int
    parts: PartSet = field(repr=False)
    part_albedo: Tensor = field(repr=False)  # [K, 3], one colour per part
    blend: float = field(repr=False)  # smooth-union width (scene units)
    bounds: Tensor = field(repr=False)  # [2, 3] padded world bounding box (low, high)
    pose: Similarity | None = field(default=None, repr=False)  # None: the canonical frame
    light: Tensor = field(default=LIGHT_DIR, repr=False)
    cuts: PartSet | None = field(default=None, repr=False)  # removed from the solid (holes, notches)

    def posed(self, pose: Similarity, light: Tensor | None = None) -> SDFObject:
        """This object moved by ``pose`` (after its own pose), lit from ``light`` (default: unchanged)."""
        moved = pose.apply(box_corners(self.bounds))
        return replace(
            self,
            pose=pose if self.pose is None else self.pose.then(pose),
            bounds=torch.stack([moved.amin(0), moved.amax(0)]),
            light=self.light if light is None else torch.nn.functional.normalize(light.float(), dim=0),
        )

    def _canonical(self, x: Tensor) -> Tensor:
        return x if self.pose is None else self.pose.inverse(x.float())

    def sdf(self, x: Tensor) -> Tensor:
        """Signed distance [N] (negative inside) at points ``x`` [N, 3]."""
        d = torch.cat([self._sdf_chunk(c) for c in self._canonical(x).split(CHUNK)])
        return d if self.pose is None else d * self.pose.scale

    def _sdf_chunk(self, c: Tensor) -> Tensor:
        d = smooth_union(self.parts.distances(c), self.blend)[0]
        return d if self.cuts is None else torch.maximum(d, -self.cuts.distances(c).amin(0))

    def albedo(self, x: Tensor) -> Tensor:
        """Albedo [N, 3] in [0.1, 0.9]: part colours weighted like the smooth union."""
        colors = self.part_albedo.to(x.device)
        chunks = self._canonical(x).split(CHUNK)
        weights = (smooth_union(self.parts.distances(c), self.blend)[1] for c in chunks)
        return torch.cat([w.T @ colors for w in weights])

    def density(self, x: Tensor) -> Tensor:
        """Volume density [N] = SIGMA_MAX * sigmoid(-sdf / BETA): a soft version of the solid."""
        return SIGMA_MAX * torch.sigmoid(-self.sdf(x) / BETA)
