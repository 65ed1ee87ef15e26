"""Parameter graphs (Graph Metanetworks, Lim et al. 2024): a NeRF's weights as a PyG `Data`.

Every NeRF has an MLP part (a node per neuron, a directed edge per weight, input side → output side)
built here; each family adds its spatial part (tri-plane cells, hash-table entries) through a
converter registered by family name in `nerfspace.graphs.spatial`, so a new family is one new function.

Features are laid out as `nerfspace.graphs.schema` says; ``probe`` [mlp_nodes, N_PROBES] holds the
activations of the MLP neurons (the first ``mlp_nodes`` nodes) at fixed points
(`nerfspace.graphs.probes`); spatial nodes have none, which keeps cached graphs small. Edges are
stored in the order of `ArchSpec.param_shapes()`, row-major, so `graph_to_params` is a split and a
reshape.
"""

from __future__ import annotations

import math

import torch
from torch_geometric.data import Data

from nerfspace.archs import ArchSpec
from nerfspace.errors import InputError
from nerfspace.graphs.probes import probe_activations
from nerfspace.graphs.schema import EDGE_FEATURES, HIDDEN, INPUT, NODE_FEATURES, OUTPUT, SPATIAL_INPUT, WEIGHT
from nerfspace.graphs.spatial import SPATIAL, SpatialPart

__all__ = [
    "NODE_FEATURES",
    "EDGE_FEATURES",
    "nerf_to_graph",
    "graph_to_params",
    "graph_size",
    "mlp_nodes",
]


def mlp_nodes(spec: ArchSpec) -> int:
    """Neurons of the MLP: its inputs (padding included), hidden layers and padded outputs."""
    return sum(spec.neurons)


def graph_size(spec: ArchSpec) -> tuple[int, int]:
    """(nodes, edges) of the parameter graph of any NeRF of ``spec``, without building it."""
    shapes = spec.param_shapes()
    edges = sum(math.prod(s) for n, s in shapes.items() if not n.endswith(".bias"))
    spatial = 3 * spec.plane_res**2 if spec.family == "triplane" else 0
    if spec.family == "hash":
        spatial = sum(spec.hash_table_sizes)
    return mlp_nodes(spec) + spatial, edges


def _mlp_part(spec: ArchSpec, params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """Node features, edge index and edge features of the MLP (nodes 0 … mlp_nodes-1)."""
    dims = spec.neurons
    n_layers = len(dims)
    layer = torch.cat([torch.full((d,), float(i)) for i, d in enumerate(dims)])
    order = torch.cat([torch.arange(d, dtype=torch.float32) for d in dims])
    ntype = torch.full((sum(dims),), float(HIDDEN))
    ntype[: dims[0]] = INPUT
    ntype[: spec.spatial_dim] = SPATIAL_INPUT
    ntype[-dims[-1] :] = OUTPUT
    order[(ntype == HIDDEN)] = -1.0
    bias = torch.zeros(sum(dims))
    if spec.bias:
        bias[dims[0] :] = torch.cat([params[f"mlp.{i}.bias"] for i in range(n_layers - 1)])

    starts = [0]
    for d in dims:
        starts.append(starts[-1] + d)
    src, dst, attr = [], [], []
    for i in range(n_layers - 1):
        w = params[f"mlp.{i}.weight"]  # (out, in), row-major → edge (o, j) at o * in + j
        o, j = torch.meshgrid(torch.arange(dims[i + 1]), torch.arange(dims[i]), indexing="ij")
        src.append(starts[i] + j.reshape(-1))
        dst.append(starts[i + 1] + o.reshape(-1))
        a = torch.full((w.numel(), len(EDGE_FEATURES)), -1.0)
        a[:, 0] = w.reshape(-1)
        a[:, 1] = i + 1
        a[:, 2] = WEIGHT
        attr.append(a)
    x = torch.stack([layer + 1, order, ntype, bias], 1)  # layer 0 is the spatial structure
    return x, torch.stack([torch.cat(src), torch.cat(dst)]), torch.cat(attr)


def _check(spec: ArchSpec, params: dict[str, torch.Tensor]) -> None:
    for name, shape in spec.param_shapes().items():
        t = params.get(name)
        if t is None or tuple(t.shape) != shape:
            got = None if t is None else tuple(t.shape)
            raise InputError(f"parameter {name!r} has shape {got}, the spec needs {shape}")
        if not torch.isfinite(t).all():
            raise InputError(f"parameter {name!r} holds NaN or Inf values")


def nerf_to_graph(spec: ArchSpec, params: dict[str, torch.Tensor], occupancy: torch.Tensor | None) -> Data:
    """The parameter graph of one NeRF (``params`` without a batch dim, as stored; ``occupancy`` its
    [R, R, R] grid, which masks the probe features, or ``None`` for a field without one)."""
    convert = SPATIAL.get(spec.family)
    if convert is None:
        raise InputError(f"no graph converter for family {spec.family!r}; known: {', '.join(SPATIAL)}")
    _check(spec, params)
    if occupancy is not None and (occupancy.dim() != 3 or len(set(occupancy.shape)) != 1):
        raise InputError(f"occupancy grid has shape {tuple(occupancy.shape)}, expected [R, R, R]")
    params = {n: t.detach().float().cpu() for n, t in params.items()}
    x, edge_index, edge_attr = _mlp_part(spec, params)
    part: SpatialPart | None = convert(spec, params)
    if part is not None:
        n_mlp = x.shape[0]
        x = torch.cat([x, part.x])
        spatial_index = torch.stack([part.src + n_mlp, part.dst])
        edge_index = torch.cat([spatial_index, edge_index], 1)
        edge_attr = torch.cat([part.edge_attr, edge_attr])
    probe = probe_activations(spec, params, occupancy)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr, probe=probe, num_nodes=x.shape[0])


def graph_to_params(spec: ArchSpec, graph: Data) -> dict[str, torch.Tensor]:
    """Invert `nerf_to_graph`: the NeRF's parameters from its graph's edge values and node biases."""
    values = graph.edge_attr[:, 0]
    params, at = {}, 0
    weight_shapes = {n: s for n, s in spec.param_shapes().items() if not n.endswith(".bias")}
    for name, shape in weight_shapes.items():
        n = math.prod(shape)
        params[name] = values[at : at + n].reshape(shape).clone()
        at += n
    if spec.bias:
        bias = graph.x[spec.mlp_in : mlp_nodes(spec), NODE_FEATURES.index("bias")]
        for i, (out, _) in enumerate(spec.layer_shapes):
            params[f"mlp.{i}.bias"], bias = bias[:out].clone(), bias[out:]
    return {n: params[n] for n in spec.param_shapes()}
