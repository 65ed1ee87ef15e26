"""The MLP head shared by all families, evaluated for K networks at once."""

from __future__ import annotations

import torch

from nerfspace.fields.packing import segments


def mlp_forward(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor] | None,
    x: torch.Tensor,
    activation: str,
    net: torch.Tensor | None = None,
) -> torch.Tensor:
    """``weights[i]``: [K, out, in] (PyTorch layout); ``x``: [K, P, in] → [K, P, out_last], or packed
    ``x`` [M, in] with ``net`` [M] → [M, out_last]. The activation follows every layer but the last."""
    act = torch.relu if activation == "relu" else torch.sin
    if net is not None:
        parts = []
        for k, s, e in segments(net, weights[0].shape[0]):
            one = [w[k : k + 1] for w in weights]
            b = [b[k : k + 1] for b in biases] if biases is not None else None
            parts.append(mlp_forward(one, b, x[None, s:e], activation)[0])
        return torch.cat(parts) if parts else x.new_zeros(0, weights[-1].shape[1])
    h = x
    for i, w in enumerate(weights):
        h = torch.bmm(h, w.transpose(1, 2))
        if biases is not None:
            h = h + biases[i][:, None, :]
        if i < len(weights) - 1:
            h = act(h)
    return h
