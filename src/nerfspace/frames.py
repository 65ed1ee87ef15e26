"""Similarity transforms between an object's canonical frame and a capture's frame, and random rotations.

A capture frame is ``x = scale * rotation @ x_canonical + translation``; every NeRF made from an
independent capture stores its transform (`Similarity.to_dict`) for evaluation only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from nerfspace.errors import FileFormatError, InputError


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * rotation @ x + translation`` (rotation [3, 3] orthonormal, det +1)."""

    rotation: Tensor
    translation: Tensor
    scale: float

    @classmethod
    def identity(cls) -> Similarity:
        return cls(torch.eye(3), torch.zeros(3), 1.0)

    def apply(self, x: Tensor) -> Tensor:
        """Points [..., 3] of the canonical frame in this frame."""
        rot, t = self.rotation.to(x), self.translation.to(x)
        return self.scale * x @ rot.T + t

    def inverse(self, x: Tensor) -> Tensor:
        """Points [..., 3] of this frame in the canonical frame."""
        rot, t = self.rotation.to(x), self.translation.to(x)
        return (x - t) @ rot / self.scale

    def inverted(self) -> Similarity:
        """The transform back into the canonical frame."""
        rt = self.rotation.T
        return Similarity(rt, -(rt @ self.translation) / self.scale, 1.0 / self.scale)

    def then(self, other: Similarity) -> Similarity:
        """This transform followed by ``other``."""
        return Similarity(
            other.rotation @ self.rotation,
            other.scale * other.rotation @ self.translation + other.translation,
            other.scale * self.scale,
        )

    def to_dict(self) -> dict:
        return {
            "rotation": [[round(float(v), 7) for v in row] for row in self.rotation],
            "translation": [round(float(v), 7) for v in self.translation],
            "scale": round(float(self.scale), 7),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Similarity:
        return cls(
            torch.tensor(d["rotation"], dtype=torch.float32),
            torch.tensor(d["translation"], dtype=torch.float32),
            float(d["scale"]),
        )


def box_corners(bounds: Tensor) -> Tensor:
    """The 8 corners [8, 3] of the axis-aligned box ``bounds`` [2, 3] (low, high)."""
    pick = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], dtype=torch.bool)
    return torch.where(pick, bounds[1], bounds[0])


def axis_rotation(axis: Tensor, angle: float) -> Tensor:
    """[3, 3] rotation by ``angle`` radians about the unit ``axis`` [3] (Rodrigues)."""
    x, y, z = (float(v) for v in axis / axis.norm())
    k = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return torch.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def yaw_tilt_rotation(yaw: float, tilt: float, tilt_axis_angle: float) -> Tensor:
    """A yaw about +z, then a tilt by ``tilt`` radians about the horizontal axis at ``tilt_axis_angle``."""
    axis = torch.tensor([math.cos(tilt_axis_angle), math.sin(tilt_axis_angle), 0.0])
    return axis_rotation(axis, tilt) @ axis_rotation(torch.tensor([0.0, 0.0, 1.0]), yaw)


def quaternion_matrix(q: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] of quaternions [..., 4] (w, x, y, z; normalised here)."""
    w, x, y, z = torch.nn.functional.normalize(q, dim=-1).unbind(-1)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def uniform_rotation(gen: torch.Generator) -> Tensor:
    """A rotation drawn uniformly from SO(3) (unit quaternion from a normal 4-vector)."""
    return quaternion_matrix(torch.randn(4, generator=gen, dtype=torch.float64)).float()


UP_AXES = ("x", "y", "z")
_UP_ROTATIONS = {  # R_up: a file's up axis onto +z (right-handed)
    "x": [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]],
    "y": [[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]],
    "z": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
}
FILE_HALF = 0.5  # half the longest side of a normalised file's content (canonical objects lie within +-0.58)


@dataclass(frozen=True)
class FileFrame:
    """How a user file's coordinates (a mesh, splats, a point cloud) became canonical:
    ``x_canonical = scale * R_up @ (x - center)``; ``R_up`` turns the file's ``up`` axis onto +z."""

    up: str
    center: tuple[float, float, float]
    scale: float

    def rotation(self) -> np.ndarray:
        return np.array(_UP_ROTATIONS[self.up])

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Points [N, 3] of the file in the canonical frame."""
        return self.scale * (x - np.array(self.center)) @ self.rotation().T

    def to_dict(self) -> dict:
        return {"up": self.up, "center": [round(c, 7) for c in self.center], "scale": self.scale}

    @classmethod
    def from_dict(cls, d: dict) -> FileFrame:
        return cls(d["up"], tuple(float(c) for c in d["center"]), float(d["scale"]))

    @classmethod
    def kept(cls, up: str) -> FileFrame:
        """The frame of a file already in scene units about the origin: only its up axis turned."""
        if up not in UP_AXES:
            raise InputError(f"unknown up axis {up!r}; expected one of {', '.join(UP_AXES)}")
        return cls(up, (0.0, 0.0, 0.0), 1.0)


def file_frame(points: np.ndarray, up: str, source: object = "") -> FileFrame:
    """The frame that turns ``up`` onto +z, centres the turned bounding box of ``points`` [N, 3] and makes
    its longest side ``2 * FILE_HALF``; an `InputError` for an unknown axis, or points without extent
    (naming the file ``source``)."""
    if up not in UP_AXES:
        raise InputError(f"unknown up axis {up!r}; expected one of {', '.join(UP_AXES)}")
    rot = np.array(_UP_ROTATIONS[up])
    turned = points @ rot.T
    low, high = turned.min(0), turned.max(0)
    extent = float((high - low).max())
    if not extent > 0:
        raise FileFormatError(f"{source}: no extent (all its points coincide)")
    center = rot.T @ ((low + high) / 2)
    return FileFrame(up, tuple(float(c) for c in center), 2 * FILE_HALF / extent)
