"""The Graph Meta-Network part: parameter graphs (a PyG batch) -> [B, width].

Feature pre-encoder (sinusoidal embeddings of the numbers, learned embeddings of the types), then
residual edge-and-node message-passing blocks with pre-LayerNorm and mean aggregation (the last block
updates edges only), then a DeepSets readout over edges (per-edge MLP, mean per graph) ending in ReLU, as
in the paper's released configuration. Beyond the paper (docs/architecture.md): ``probes`` adds every MLP
neuron's activations at the probe points to its initial state, ``output_readout`` reads the 4 output
neurons' states out beside the edge mean.

This module is the one autograd implementation; `nerfspace.encoders.gmn_fused` is an opt-in CPU
inference kernel of the same function, tested against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.data import Batch, Data
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter

from nerfspace.encoders.layers import check_flags, check_sizes, mlp
from nerfspace.errors import InputError
from nerfspace.graphs.schema import (
    EDGE_FEATURES,
    EDGE_TYPES,
    MLP_NODE_TYPES,
    NODE_FEATURES,
    NODE_TYPES,
    OUTPUT,
)
from nerfspace.probe import CHANNELS, N_PROBES

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class GMNConfig:
    """``precision``: ``fp32`` or ``bf16`` (matrix products under bfloat16 autocast; residual states,
    norms, means and the output in float32); bf16 pays only where the hardware multiplies bf16 natively."""

    kind: ClassVar[str] = "gmn"
    reads: ClassVar[str] = "graph"
    objective: ClassVar[str] = "object"

    hidden: int = 64
    blocks: int = 4
    width: int = 256
    n_freqs: int = 8  # sinusoidal frequencies per number
    precision: str = "fp32"
    probes: bool = True
    output_readout: bool = True

    def __post_init__(self) -> None:
        check_sizes(self, "hidden", "blocks", "width", "n_freqs")
        check_flags(self, "probes", "output_readout")
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown GMN precision {self.precision!r:.40}; expected one of {PRECISIONS}")


class Sinusoidal(nn.Module):
    """Each number v -> (v, sin(2^k pi v), cos(2^k pi v)) for k < n_freqs."""

    def __init__(self, n_freqs: int):
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs)) * math.pi, persistent=False)
        self.out_per_number = 1 + 2 * n_freqs

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # [N, C] -> [N, C * out_per_number]
        a = v[..., None] * self.freqs
        return torch.cat([v[..., None], a.sin(), a.cos()], -1).flatten(-2)


def numbers(t: torch.Tensor, type_col: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a feature matrix into its numeric columns and its (integer) type column."""
    return torch.cat([t[:, :type_col], t[:, type_col + 1 :]], 1), t[:, type_col].long()


class Block(MessagePassing):
    """One residual block: every edge from (its source, its target, itself), then every node from
    (itself, the mean of its incoming edges, the mean of its outgoing edges)."""

    def __init__(self, h: int, update_nodes: bool = True):
        super().__init__(aggr="mean")
        self.norm_n, self.norm_e = nn.LayerNorm(h), nn.LayerNorm(h)
        # the edge MLP's first layer on [h_src, h_dst, e], split by input: the node terms are projected
        # once per node and gathered per edge
        self.src, self.dst = nn.Linear(h, h, bias=False), nn.Linear(h, h, bias=False)
        self.edge_in, self.edge_out = nn.Linear(h, h), nn.Linear(h, h)
        self.node = mlp(3 * h, h, h) if update_nodes else None
        self.norm_agg = nn.LayerNorm(2 * h) if update_nodes else None

    def forward(self, x: torch.Tensor, e: torch.Tensor, edge_index: torch.Tensor):
        xn = self.norm_n(x)
        e = e + self.edge_updater(edge_index, p_src=self.src(xn), p_dst=self.dst(xn), e=e)
        if self.node is None:
            return x, e
        size = (x.shape[0], x.shape[0])
        incoming = self.propagate(edge_index, e=e, size=size)
        outgoing = self.propagate(edge_index.flip(0), e=e, size=size)
        x = x + self.node(torch.cat([xn, self.norm_agg(torch.cat([incoming, outgoing], 1))], 1))
        return x, e

    def edge_update(self, p_src_j: torch.Tensor, p_dst_i: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.edge_out(F.silu(p_src_j + p_dst_i + self.edge_in(self.norm_e(e))))

    def message(self, e: torch.Tensor) -> torch.Tensor:
        return e


@dataclass
class GraphBatch:
    """What the GMN reads of a batch of parameter graphs, checked once."""

    x_num: torch.Tensor  # [N, node numbers]
    x_type: torch.Tensor  # [N]
    e_attr: torch.Tensor  # [E, edge features]
    edge_index: torch.Tensor  # [2, E]
    edge_batch: torch.Tensor  # [E]: the graph of every edge
    n_graphs: int
    probe: tuple[torch.Tensor, torch.Tensor] | None  # (MLP node indices, their probe rows)
    outputs: torch.Tensor | None  # [B * 4]: the output neurons, graph by graph


class GMN(nn.Module):
    def __init__(self, config: GMNConfig):
        super().__init__()
        self.config = config
        h, s = config.hidden, Sinusoidal(config.n_freqs)
        self.sin = s
        n_num, e_num = len(NODE_FEATURES) - 1, len(EDGE_FEATURES) - 1  # all but the type
        self.node_in = nn.Linear(n_num * s.out_per_number, h)
        self.edge_in = nn.Linear(e_num * s.out_per_number, h)
        self.node_type = nn.Embedding(NODE_TYPES, h)
        self.edge_type = nn.Embedding(EDGE_TYPES, h)
        self.blocks = nn.ModuleList(
            Block(h, update_nodes=i < config.blocks - 1) for i in range(config.blocks)
        )
        self.readout_norm = nn.LayerNorm(h)
        self.readout_hidden = nn.Linear(h, h)
        self.probe_in = mlp(N_PROBES, h, h) if config.probes else None
        self.output_norm = nn.LayerNorm(h) if config.output_readout else None
        self.readout_out = nn.Linear(self.readout_inputs, config.width)

    @property
    def readout_inputs(self) -> int:
        """Inputs of the readout's last layer: the edge mean, then the output neurons' states."""
        return self.config.hidden * (1 + CHANNELS * int(self.config.output_readout))

    def read(self, graphs: Data | Batch) -> GraphBatch:
        """Check a batch of graphs against this GMN's options and split it into what it reads."""
        x, e, edge_index = graphs.x, graphs.edge_attr, graphs.edge_index
        batch = getattr(graphs, "batch", None)
        n_graphs = graphs.num_graphs if batch is not None else 1
        edge_batch = (
            batch.index_select(0, edge_index[0]) if batch is not None else torch.zeros_like(edge_index[0])
        )
        x_num, x_type = numbers(x, NODE_FEATURES.index("type"))
        probe = outputs = None
        if self.config.probes:
            if getattr(graphs, "probe", None) is None:
                raise InputError("the encoder uses probe features and these graphs have none (rebuild them)")
            types = x[:, NODE_FEATURES.index("type")]
            rows = torch.isin(types, torch.tensor(MLP_NODE_TYPES, dtype=types.dtype)).nonzero().squeeze(1)
            if rows.numel() != graphs.probe.shape[0]:
                raise InputError(
                    f"graphs hold {rows.numel()} MLP neurons but {graphs.probe.shape[0]} probe rows"
                )
            probe = (rows, graphs.probe)
        if self.config.output_readout:
            t_n, t_o = NODE_FEATURES.index("type"), NODE_FEATURES.index("order")
            outputs = ((x[:, t_n] == OUTPUT) & (x[:, t_o] < CHANNELS)).nonzero().squeeze(1)
            if outputs.numel() != CHANNELS * n_graphs:
                raise InputError(f"every graph needs {CHANNELS} output neurons to read out")
        return GraphBatch(x_num, x_type, e, edge_index, edge_batch, n_graphs, probe, outputs)

    def node_states(self, g: GraphBatch) -> torch.Tensor:
        """Initial node states: encoded numbers + type (+ probe activations on MLP neurons)."""
        h = self.node_in(self.sin(g.x_num)) + self.node_type(g.x_type)
        if g.probe is None:
            return h
        rows, values = g.probe
        return h.index_add(0, rows, self.probe_in(values).to(h.dtype))

    def readout(self, pooled: torch.Tensor, h: torch.Tensor, g: GraphBatch) -> torch.Tensor:
        """[B, width] from the mean of the per-edge readout states (and the output neurons' states)."""
        if g.outputs is not None:
            outs = self.output_norm(h.index_select(0, g.outputs)).reshape(g.n_graphs, -1)
            pooled = torch.cat([pooled, outs.to(pooled.dtype)], 1)
        return F.relu(self.readout_out(pooled)).float()

    def forward(self, graphs: Data | Batch) -> torch.Tensor:
        g = self.read(graphs)
        if self.config.precision == "bf16":
            with torch.autocast(g.x_num.device.type, dtype=torch.bfloat16):
                return self._forward(g)
        return self._forward(g)

    def _forward(self, g: GraphBatch) -> torch.Tensor:
        h = self.node_states(g)
        e_num, e_type = numbers(g.e_attr, EDGE_FEATURES.index("type"))
        e = self.edge_in(self.sin(e_num)) + self.edge_type(e_type)
        for block in self.blocks:
            h, e = block(h, e, g.edge_index)
        r = F.silu(self.readout_hidden(self.readout_norm(e)))
        pooled = scatter(r.float(), g.edge_batch, 0, g.n_graphs, reduce="mean")
        return self.readout(pooled, h, g)

    def flops(self, graphs: Data | Batch, fused: bool = False) -> int:
        """Multiply-add FLOPs (2 per multiply-accumulate) of the matrix products of one forward pass:
        as this module runs it, or (``fused``) as `gmn_fused` runs it (target projections only for the
        nodes that receive edges)."""
        c = self.config
        h, k = c.hidden, 1 + 2 * c.n_freqs
        n, e = graphs.num_nodes, graphs.num_edges
        b = graphs.num_graphs if isinstance(graphs, Batch) else 1
        n_t = int((torch.bincount(graphs.edge_index[1], minlength=n) > 0).sum()) if fused else n
        macs = n * (len(NODE_FEATURES) - 1) * k * h + e * (len(EDGE_FEATURES) - 1) * k * h
        for i in range(c.blocks):
            macs += (n + n_t) * h * h + 2 * e * h * h
            if i < c.blocks - 1:
                macs += n * 4 * h * h
        if c.probes:
            macs += graphs.probe.shape[0] * (N_PROBES * h + h * h)
        macs += e * h * h + b * self.readout_inputs * c.width
        return 2 * macs
