"""Radiance fields of the three families, functional and batched over K networks of one spec.

A field is an `ArchSpec` plus a parameter dict ``name -> tensor`` whose shapes are
``spec.param_shapes()`` with a leading K dimension. `query` evaluates all K fields at once.
This package is the single source of truth for how an architecture computes.
"""

from __future__ import annotations

import math

import torch

from nerfspace.archs import ArchSpec
from nerfspace.fields.encoding import frequency_encode, normalize
from nerfspace.fields.hashgrid import hash_features
from nerfspace.fields.mlp import mlp_forward
from nerfspace.fields.triplane import triplane_features

__all__ = ["init_params", "query", "mlp_input", "outputs", "trunc_exp"]


class _TruncExp(torch.autograd.Function):
    """exp(min(x, 15)), with gradient exp(clamp(x, -15, 15)) below 15 and zero above. A density of
    e^15 is opaque already; uncapped, a field's vanishing but non-zero gradient there, rescaled by
    Adam into full-size steps (and colour gradients through shared hash entries) grew densities
    without bound and wrecked fits (measured: hash_t11 fits collapsing to 12 dB)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x.clamp(max=15.0))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(x.clamp(-15.0, 15.0)) * (x <= 15.0)


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    return _TruncExp.apply(x)


def init_params(
    spec: ArchSpec, k: int = 1, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """Fresh parameters for K fields. Weights are uniform(+-sqrt(6/fan_in)); rows of the padded
    outputs and columns of the padded inputs start (and, receiving no gradient, stay) at zero."""
    params: dict[str, torch.Tensor] = {}
    for name, shape in spec.param_shapes().items():
        if name == "triplane":
            t = torch.randn(k, *shape, generator=generator) * 0.1
        elif name.startswith("hash."):
            t = (torch.rand(k, *shape, generator=generator) * 2 - 1) * 1e-4
        elif name.endswith(".bias"):
            t = torch.zeros(k, *shape)
        else:
            out, fan_in = shape
            bound = math.sqrt(6.0 / fan_in)
            t = (torch.rand(k, *shape, generator=generator) * 2 - 1) * bound
            if name == "mlp.0.weight":
                t[:, :, spec.spatial_dim + spec.encoding_dim :] = 0.0
            if out == spec.out_pad:
                t[:, spec.out_dim :, :] = 0.0
        params[name] = t
    return params


def mlp_input(
    spec: ArchSpec, params: dict[str, torch.Tensor], x: torch.Tensor, net: torch.Tensor | None = None
) -> torch.Tensor:
    """The MLP's input for world points ``x`` ([K, P, 3], or packed [M, 3] with ``net``): spatial
    features ⊕ frequency encoding, zero-padded to ``spec.mlp_in``."""
    x01 = normalize(x)
    parts = []
    if spec.family == "triplane":
        parts.append(triplane_features(params["triplane"], x01 * 2 - 1, net))
    elif spec.family == "hash":
        tables = [params[f"hash.level{i}"] for i in range(spec.hash_levels)]
        parts.append(hash_features(tables, x01, spec, net))
    if spec.n_freqs:
        parts.append(frequency_encode(x01, spec.n_freqs))
    h = torch.cat(parts, -1) if len(parts) > 1 else parts[0]
    pad = spec.mlp_in - h.shape[-1]
    return torch.nn.functional.pad(h, (0, pad)) if pad else h


def query(
    spec: ArchSpec, params: dict[str, torch.Tensor], x: torch.Tensor, net: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB in (0, 1) and density >= 0 of K fields: at points ``x`` [K, P, 3] → ([K, P, 3], [K, P]),
    or at packed points ``x`` [M, 3] of fields ``net`` [M] (grouped by field) → ([M, 3], [M])."""
    n = len(spec.layer_shapes)
    weights = [params[f"mlp.{i}.weight"] for i in range(n)]
    biases = [params[f"mlp.{i}.bias"] for i in range(n)] if spec.bias else None
    return outputs(mlp_forward(weights, biases, mlp_input(spec, params, x, net), spec.activation, net))


def outputs(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The MLP's raw outputs [..., >= 4] as the field's RGB in (0, 1) [..., 3] and density >= 0 [...]."""
    return torch.sigmoid(raw[..., :3]), trunc_exp(raw[..., 3] - 1.0)
