"""Input encodings shared by every family: tiny-cuda-nn's frequency encoding."""

from __future__ import annotations

import math

import torch

from nerfspace.archs import SCENE_BOX


def normalize(x: torch.Tensor) -> torch.Tensor:
    """World coordinates in the scene box → [0, 1]^3."""
    return (x + SCENE_BOX) / (2 * SCENE_BOX)


def frequency_encode(x01: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """tiny-cuda-nn ``Frequency`` encoding of [..., D] inputs in [0, 1] → [..., D * 2 * n_freqs].

    Feature order (as tiny-cuda-nn): for each input dim, for each frequency 2^i (i < n_freqs),
    sin then cos of 2^i * pi * x.
    """
    freqs = (2.0 ** torch.arange(n_freqs, dtype=x01.dtype, device=x01.device)) * math.pi
    angles = x01[..., :, None] * freqs  # [..., D, n]
    enc = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1)  # [..., D, n, 2]
    return enc.flatten(-3)
