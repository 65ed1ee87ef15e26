"""The invariant encoder: a NeRF's capture-invariant features (`nerfspace.invariant.field_invariant`) ->
[B, width], unit length. A LayerNorm over the input, one hidden layer (LayerNorm, ReLU, dropout), a linear
map. Its ``objective`` names what training pulls together: two NeRFs of one ``object``, or of one
``category`` (a composition may hold one part of each; measurements: docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from nerfspace.encoders.layers import check_sizes
from nerfspace.errors import InputError
from nerfspace.invariant import INVARIANT_WIDTH

OBJECTIVES = ("object", "category")
DROPOUT = 0.1


@dataclass(frozen=True)
class InvariantEncoderConfig:
    kind: ClassVar[str] = "invariant"
    reads: ClassVar[str] = "invariant"  # [B, INVARIANT_WIDTH]

    hidden: int = 512
    width: int = 256
    objective: str = "object"

    def __post_init__(self) -> None:
        check_sizes(self, "hidden", "width")
        if self.objective not in OBJECTIVES:
            raise InputError(
                f"invariant part objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r:.40}"
            )


class InvariantEncoder(nn.Module):
    def __init__(self, config: InvariantEncoderConfig):
        super().__init__()
        self.config = config
        h = config.hidden
        self.net = nn.Sequential(
            nn.LayerNorm(INVARIANT_WIDTH),
            nn.Linear(INVARIANT_WIDTH, h),
            nn.LayerNorm(h),
            nn.ReLU(),
            nn.Dropout(DROPOUT),
            nn.Linear(h, config.width),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[B, INVARIANT_WIDTH] -> [B, width], unit length."""
        return nn.functional.normalize(self.net(features), dim=1)

    def flops(self, features: torch.Tensor) -> int:
        """Multiply-add FLOPs of the matrix products of one forward pass over ``features``."""
        c = self.config
        return 2 * features.shape[0] * (INVARIANT_WIDTH * c.hidden + c.hidden * c.width)
