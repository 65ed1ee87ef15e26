"""Training objectives: the rendering loss L_R, the SigLIP contrastive loss L_C, and L_R+C."""

from __future__ import annotations

import math

import torch
from torch import nn

from nerfspace.fields.packing import flat_net
from nerfspace.render import render_rays, step_size

LOSSES = ("l_rec", "l_con", "l_rec_con")
CONTRASTIVE_WEIGHT = 0.02  # L_R+C = L_R + 0.02 L_C


class SigLIP(nn.Module):
    """SigLIP over a batch: logits = cos · exp(t) + b (t = log 10, b = -10 at start, both learned);
    the label is +1 for two embeddings of the same object, -1 otherwise (the diagonal is skipped)."""

    def __init__(self):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(10.0)))
        self.bias = nn.Parameter(torch.tensor(-10.0))

    def forward(self, z: torch.Tensor, object_ids: torch.Tensor) -> torch.Tensor:
        z = nn.functional.normalize(z, dim=1)
        logits = z @ z.T * self.log_temperature.exp() + self.bias
        labels = 2.0 * (object_ids[:, None] == object_ids[None, :]).float() - 1.0
        off = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
        return -nn.functional.logsigmoid(labels * logits)[off].sum() / len(z)


def rendering_loss(
    field,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    target: torch.Tensor,
    occupancy: torch.Tensor,
    empty_points: torch.Tensor,
    samples_per_diagonal: int = 128,
) -> torch.Tensor:
    """L_R: 0.8 · SmoothL1 between the decoder's render and the NeRF's own render on foreground rays
    ``origins``/``dirs``/``target`` [K, N, 3] (through the NeRF's ``occupancy`` [K, R, R, R]) + 0.2 ·
    SmoothL1 pulling the decoder's samples at ``empty_points`` [K, M, 3] (empty cells) to the
    background: no opacity there."""
    color, _ = render_rays(field, origins, dirs, occupancy, samples_per_diagonal)
    fg = nn.functional.smooth_l1_loss(color, target)
    k, m, _ = empty_points.shape
    _, sigma = field(empty_points.reshape(-1, 3), flat_net(k, m, empty_points.device))
    alpha = 1.0 - torch.exp(-sigma * step_size(samples_per_diagonal))
    bg = nn.functional.smooth_l1_loss(alpha, torch.zeros_like(alpha))
    return 0.8 * fg + 0.2 * bg


__all__ = ["LOSSES", "CONTRASTIVE_WEIGHT", "SigLIP", "rendering_loss"]
