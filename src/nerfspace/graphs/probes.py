"""Probe features: every MLP neuron's activation at a fixed set of points, a node feature.

A NeRF's weights determine its field; evaluating the MLP at ``N_PROBES`` fixed points (no rendering,
no ray marching: one tiny forward pass) gives each neuron a vector that moves with the neuron under
any permutation of hidden neurons, so the graph keeps its symmetry, and gives the output neurons the
field itself at those points, which is comparable across architectures. Measured on this project's
zoos, an encoder without them could not tell two objects of one architecture apart (cosine 1 - 1e-6
between different objects after training), with them it could; see docs/architecture.md.
"""

from __future__ import annotations

import torch

from nerfspace import fields
from nerfspace.archs import ArchSpec

# 32 random points plus an 8x8x8 grid of cell centres (world units). Measured on the 130-object benchmark
# zoo (L_R+C, 30 epochs, seed 0), test recall@1 seen pairs / classification seen: 32 random points
# 0.37 / 0.36; 32 + a 4^3 grid 0.49 / 0.54; 32 + this 8^3 grid 0.55 / 0.68 (BENCHMARKS.md).
_GRID = torch.linspace(-0.4375, 0.4375, 8)
PROBE_POINTS = torch.cat(
    [
        torch.rand(32, 3, generator=torch.Generator().manual_seed(0)) - 0.5,
        torch.cartesian_prod(_GRID, _GRID, _GRID),
    ]
)
N_PROBES = PROBE_POINTS.shape[0]


def probe_activations(spec: ArchSpec, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """[mlp_nodes, N_PROBES]: MLP inputs, hidden activations and raw outputs at `PROBE_POINTS`,
    squashed by asinh (densities' logits can be large), in the node order of the graph."""
    batched = {n: t[None] for n, t in params.items()}
    with torch.no_grad():
        h = fields.mlp_input(spec, batched, PROBE_POINTS[None])[0]
        acts = [h]
        n = len(spec.layer_shapes)
        for i in range(n):
            h = h @ params[f"mlp.{i}.weight"].T
            if spec.bias:
                h = h + params[f"mlp.{i}.bias"]
            if i < n - 1:
                h = torch.relu(h) if spec.activation == "relu" else torch.sin(h)
            acts.append(h)
    return torch.asinh(torch.cat(acts, 1).T).contiguous()
