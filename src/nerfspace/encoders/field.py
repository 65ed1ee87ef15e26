"""The field encoder: a NeRF's field at the probe points (`nerfspace.probe.field_probe`) -> [B, 4 * hidden].

It needs nothing of the NeRF but its field, f(x) -> (rgb, sigma), so it reads any architecture, and any
other radiance field, the same way. One MLP, shared by the 4 channels (r, g, b, sigma / (1 + sigma)),
maps each channel's `N_PROBES` values to ``hidden`` features; the channels' features are concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from nerfspace.encoders.layers import check_sizes, mlp
from nerfspace.probe import CHANNELS, N_PROBES


@dataclass(frozen=True)
class FieldEncoderConfig:
    kind: ClassVar[str] = "field"
    reads: ClassVar[str] = "field"  # [B, N_PROBES, 4]
    objective: ClassVar[str] = "object"

    hidden: int = 64

    def __post_init__(self) -> None:
        check_sizes(self, "hidden")

    @property
    def width(self) -> int:
        return CHANNELS * self.hidden


class FieldEncoder(nn.Module):
    def __init__(self, config: FieldEncoderConfig):
        super().__init__()
        self.config = config
        self.mlp = mlp(N_PROBES, config.hidden, config.hidden)

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        """[B, N_PROBES, 4] -> [B, 4 * hidden]."""
        return self.mlp(field.transpose(1, 2)).flatten(1)

    def flops(self, field: torch.Tensor) -> int:
        """Multiply-add FLOPs of the matrix products of one forward pass over ``field``."""
        h = self.config.hidden
        return 2 * field.shape[0] * CHANNELS * (N_PROBES * h + h * h)
