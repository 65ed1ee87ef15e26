"""The MLP head shared by all families, evaluated for K networks at once."""

from __future__ import annotations

import torch


def mlp_forward(
    weights: list[torch.Tensor], biases: list[torch.Tensor] | None, x: torch.Tensor, activation: str
) -> torch.Tensor:
    """``weights[i]``: [K, out, in] (PyTorch layout); ``x``: [K, P, in] → [K, P, out_last].
    The activation follows every layer but the last."""
    act = torch.relu if activation == "relu" else torch.sin
    h = x
    for i, w in enumerate(weights):
        h = torch.bmm(h, w.transpose(1, 2))
        if biases is not None:
            h = h + biases[i][:, None, :]
        if i < len(weights) - 1:
            h = act(h)
    return h
