"""Captures: how the views a NeRF is fitted from were taken.

``aligned`` (the paper's protocol): every NeRF of an object is fitted from the same views of the object
in its canonical frame, under the canonical light. ``independent`` (what users have): each NeRF is its
own capture, drawn from its own seed: a similarity transform of the object into the scene box (yaw over
360 degrees and a tilt, or any rotation; a shift; a scale), its own cameras (count, azimuth phase,
elevation band, distance) and its own light. The transform is stored in the NeRF file's metadata
(``capture``) for evaluation; no encoder reads it.

An object is never clipped by the box: the options are refused when even an unrotated canonical object
could leave it, and a drawn capture whose rotated object would not fit moves the object towards the centre
and, where that is not enough, shrinks it (the stored scale is the one used).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from nerfspace.archs import SCENE_BOX
from nerfspace.errors import InputError
from nerfspace.frames import Similarity, box_corners, uniform_rotation, yaw_tilt_rotation
from nerfspace.render import Cameras, orbit_cameras
from nerfspace.shapes import SDFObject

CAPTURE_MODES = ("aligned", "independent")
ROTATIONS = ("yaw", "so3")
CANONICAL_HALF = 0.58  # a placed object's padded bounds lie within +-this (shapes.categories placement)
BOX_LIMIT = SCENE_BOX - 0.01  # a posed object's padded bounds stay within +-this
# camera and light draws of an independent capture
RADIUS = (2.0, 2.3)
LOW_ELEVATION_DEG = (-15.0, 0.0)
HIGH_ELEVATION_DEG = (45.0, 70.0)
LIGHT_ELEVATION_DEG = (20.0, 75.0)


@dataclass(frozen=True)
class CaptureConfig:
    """The distribution captures are drawn from. Options other than ``mode`` apply to ``independent``."""

    mode: str = "aligned"
    rotation: str = "yaw"  # yaw uniform over 360 degrees, then a tilt up to tilt_deg; or so3 (uniform)
    tilt_deg: float = 15.0
    shift: float = 0.1  # translation up to this along each axis (scene units)
    scale: tuple[float, float] = (0.8, 1.0)
    views: tuple[int, int] = (16, 32)  # training views, uniform in this range

    def __post_init__(self) -> None:
        if self.mode not in CAPTURE_MODES:
            raise InputError(f"unknown captures {self.mode!r}; expected one of {', '.join(CAPTURE_MODES)}")
        if self.rotation not in ROTATIONS:
            raise InputError(
                f"unknown capture rotation {self.rotation!r}; expected one of {', '.join(ROTATIONS)}"
            )
        values = (self.tilt_deg, self.shift, *self.scale)
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            raise InputError("capture tilt, shift and scale must be finite numbers")
        if not 0 <= self.tilt_deg <= 180:
            raise InputError(f"capture tilt must be in [0, 180] degrees, got {self.tilt_deg}")
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise InputError(f"capture scale range must satisfy 0 < min <= max, got {lo}, {hi}")
        if self.shift < 0:
            raise InputError(f"capture shift must be >= 0, got {self.shift}")
        if hi * CANONICAL_HALF + self.shift > BOX_LIMIT:
            raise InputError(
                f"capture scale up to {hi} with shift {self.shift} can push objects out of the scene box"
                f" (needs max scale * {CANONICAL_HALF} + shift <= {BOX_LIMIT:.2f})"
            )
        a, b = self.views
        if not (isinstance(a, int) and isinstance(b, int) and 4 <= a <= b <= 256):
            raise InputError(f"capture views must satisfy 4 <= min <= max <= 256, got {a}, {b}")
        changed = [
            f"--capture-{f.name.split('_')[0]}"
            for f in fields(self)
            if f.name != "mode" and getattr(self, f.name) != f.default
        ]
        if self.mode == "aligned" and changed:
            raise InputError(f"capture options ({', '.join(changed)}) need --captures independent")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scale"], d["views"] = list(self.scale), list(self.views)
        return d


@dataclass(frozen=True)
class Capture:
    """One drawn capture: the object's pose in the scene box, the light, training and held-out cameras."""

    pose: Similarity
    light: torch.Tensor
    train: Cameras
    test: Cameras

    def to_dict(self) -> dict:
        """What a NeRF file stores of its capture (metadata key ``capture``)."""
        return {
            **self.pose.to_dict(),
            "light": [round(float(v), 7) for v in self.light],
            "views": len(self.train),
        }


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _fit_in_box(obj: SDFObject, rotation: torch.Tensor, scale: float, shift: torch.Tensor) -> Similarity:
    """The pose with ``rotation`` closest to (``scale``, ``shift``) whose object stays in the box: the shift
    is clamped to the room left on each axis, the scale lowered where the rotated object is too large."""
    turned = box_corners(obj.bounds) @ rotation.T
    scale = min(scale, BOX_LIMIT / float(turned.abs().max()))
    low, high = (scale * turned).amin(0), (scale * turned).amax(0)
    shift = torch.minimum(torch.maximum(shift, -BOX_LIMIT - low), BOX_LIMIT - high)
    return Similarity(rotation, shift, scale)


def draw_capture(cfg: CaptureConfig, seed: int, obj: SDFObject, image_size: int, test_views: int) -> Capture:
    """The capture of seed ``seed`` of the canonical object ``obj`` (a pure function of its arguments)."""
    gen = torch.Generator().manual_seed(seed)
    if cfg.rotation == "so3":
        rotation = uniform_rotation(gen)
    else:
        yaw, axis = _uniform(gen, 0, 2 * math.pi), _uniform(gen, 0, 2 * math.pi)
        rotation = yaw_tilt_rotation(yaw, math.radians(_uniform(gen, 0, cfg.tilt_deg)), axis)
    scale = _uniform(gen, *cfg.scale)
    shift = torch.tensor([_uniform(gen, -cfg.shift, cfg.shift) for _ in range(3)], dtype=torch.float32)
    pose = _fit_in_box(obj, rotation, scale, shift)
    az, el = _uniform(gen, 0, 2 * math.pi), math.radians(_uniform(gen, *LIGHT_ELEVATION_DEG))
    light = torch.tensor([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    n = int(torch.randint(cfg.views[0], cfg.views[1] + 1, (), generator=gen))
    band = (_uniform(gen, *LOW_ELEVATION_DEG), _uniform(gen, *HIGH_ELEVATION_DEG))
    radius, phase = _uniform(gen, *RADIUS), _uniform(gen, 0, 2 * math.pi)
    train = orbit_cameras(n, image_size, radius, elevation_deg=band, azimuth=phase)
    test = orbit_cameras(
        test_views, image_size, radius, offset=0.5 * n / test_views, elevation_deg=band, azimuth=phase
    )
    return Capture(pose, light, train, test)
