"""Similarity transforms between an object's canonical frame and a capture's frame, and random rotations.

A capture frame is ``x = scale * rotation @ x_canonical + translation``; every NeRF made from an
independent capture stores its transform (`Similarity.to_dict`) for evaluation only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


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


def uniform_rotation(gen: torch.Generator) -> Tensor:
    """A rotation drawn uniformly from SO(3) (unit quaternion from a normal 4-vector)."""
    q = torch.randn(4, generator=gen, dtype=torch.float64)
    w, x, y, z = (q / q.norm()).tolist()
    return torch.tensor(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        dtype=torch.float32,
    )
