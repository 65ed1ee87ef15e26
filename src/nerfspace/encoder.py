"""The Graph Meta-Network encoder: a parameter graph (or a PyG batch of them) → one embedding each.

Feature pre-encoder (sinusoidal embeddings of the numbers, learned embeddings of the types), then
residual edge-and-node message-passing blocks with pre-LayerNorm and mean aggregation (the last block
updates edges only), then a DeepSets readout over edges (per-edge MLP, mean per graph) ending in ReLU,
as in the paper's released configuration.

Two exact rewrites make it cheaper than the textbook form, with the same function:
- the edge MLP's first layer on [h_src, h_dst, e] is split into per-node projections (computed once per
  node, gathered per edge) plus a per-edge term, so edges pay for one H×H product instead of 3H×H;
- the readout's last linear layer commutes with the mean over edges, so it runs once per graph.

Two ways to run the same function:
- with autograd (training, or any parameter or input that needs a gradient, or a non-CPU device):
  whole-tensor operations, one op per layer;
- without autograd on the CPU (``torch.no_grad()`` / ``torch.inference_mode()``): a fused path that
  walks the edges in chunks of ``EDGE_CHUNK`` so that every per-edge intermediate stays in cache and
  the only [E, H] tensor is the edge state, updated in place. Whole-tensor ops on [E, H] are
  memory-bound (and each fresh tensor of tens of MB pays its page faults), which made them cost as much
  as the matrix products. The fused path also gathers both node projections and sums them in one
  ``embedding_bag``, projects only the nodes that receive edges for the target side, folds per-edge
  bias additions into per-node or per-type tables, accumulates the node means chunk by chunk with
  precomputed degrees, and runs the last block's edge update and the readout in the same pass, so the
  final edge states are never stored. Its big buffers come from a per-thread workspace that is reused
  across calls (up to ``WORKSPACE_BYTES``), since fresh multi-MB tensors page-fault on every call.
  Both paths agree to float rounding (tests/test_encoder.py). What is left is dominated by the
  per-edge H×H products (two per block, one in the readout) and, on hash graphs, the per-node MLPs.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.data import Batch, Data

from nerfspace.errors import InputError
from nerfspace.graphs.probes import N_PROBES
from nerfspace.graphs.schema import (
    EDGE_FEATURES,
    EDGE_TYPES,
    MLP_NODE_TYPES,
    NODE_FEATURES,
    NODE_TYPES,
    OUTPUT,
)

OUTPUTS = 4  # RGB and density: the output neurons every NeRF has (padding rows excluded)

PRECISIONS = ("fp32", "bf16")
EDGE_CHUNK = 2048  # edges (and nodes) per step of the fused inference path; a speed knob, not a result


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes and options of the GMN. ``encoder_config("paper")`` is the paper's recipe: (128, 4,
    1024), no probe features, the edge-mean readout only.

    ``probes`` and ``output_readout`` go beyond the paper. Measured on 8 objects x 2 architectures of
    fully fitted NeRFs (L_C, all NeRFs in one batch, 50 steps): without both, embeddings of different
    objects of one architecture stayed at cosine 1 - 1e-6 and cross-architecture recall@1 at chance
    (0.12); with both, recall@1 reached 1.0 (probes alone 0.44, the readout alone 0.12). The edge mean
    averages thousands of per-edge states whose object-dependent part cancels; the output neurons'
    states, which carry the field at the probe points, do not.

    ``field_readout`` (small preset) reads the output neurons' probe rows, the field itself at the
    probe points, through their own MLP (4096 -> hidden -> hidden each) into the embedding's last
    ``4 * hidden`` entries, beside the graph readout's ReLU entries and not mixed with them. On the
    20-per-category benchmark (two seeds; L_R+C trained on each seed's zoo and tested on both zoos, 4
    cells) it took classification (seen / unseen) from 81.6 / 81.0 % without the field to 88.5 / 88.5 %,
    recall@1 on seen pairs to 98.4-99.4 %, at an architecture identifiability of 9.2-10.5 % (chance
    7.7 %). Mixing the field features into the readout's last layer instead lost most of their gain
    (84.6 / 83.9 %): on seed 1 the field features alone classified 90.4 / 90.2 %, the mixed embedding
    81.4 / 80.0 %, with 106 of its 256 ReLU entries never positive. Trained with L_R+C the graph
    readout's ReLU entries all end at zero: the embedding is then the field readout alone
    (docs/architecture.md).

    ``precision``: ``fp32`` (default) or ``bf16`` (the plain path under bfloat16 autocast: matrix
    products in bf16, residual states, norms, means and the output in float32). bf16 pays only where
    the hardware multiplies bf16 natively (GPUs, CPUs with AMX or AVX512-BF16); on an AVX2-only CPU it
    was measured about 10x slower than fp32. Drift from fp32 at paper scale (untrained weights):
    cosine >= 0.99999, max |diff| about 0.5% of the largest embedding entry.
    """

    hidden: int = 64
    blocks: int = 4
    embed_dim: int = 256
    n_freqs: int = 8  # sinusoidal frequencies per number
    precision: str = "fp32"
    probes: bool = True  # add each neuron's probe activations (`nerfspace.graphs.probes`) to its state
    output_readout: bool = True  # read the 4 output neurons' states out beside the edge mean
    field_readout: bool = False  # the output neurons' probe rows (the field) as the embedding's last part

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise InputError(f"unknown encoder precision {self.precision!r}; expected one of {PRECISIONS}")
        if self.field_readout and not (self.probes and self.output_readout):
            raise InputError("field_readout needs probes and output_readout")
        if self.embed_dim <= self.field_width:
            raise InputError(f"embed_dim must exceed the field readout's {self.field_width} entries")

    @property
    def field_width(self) -> int:
        """The embedding's last entries: the field readout's features, not mixed with the rest."""
        return OUTPUTS * self.hidden if self.field_readout else 0

    def to_dict(self) -> dict:
        return asdict(self)


ENCODER_PRESETS = {
    "small": EncoderConfig(embed_dim=512, field_readout=True),
    "paper": EncoderConfig(hidden=128, blocks=4, embed_dim=1024, probes=False, output_readout=False),
}


def encoder_config(name: str) -> EncoderConfig:
    if name not in ENCODER_PRESETS:
        raise InputError(f"unknown encoder preset {name!r}; expected one of {', '.join(ENCODER_PRESETS)}")
    return ENCODER_PRESETS[name]


class Sinusoidal(nn.Module):
    """Each number v → (v, sin(2^k π v), cos(2^k π v)) for k < n_freqs."""

    def __init__(self, n_freqs: int):
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs)) * math.pi, persistent=False)
        self.out_per_number = 1 + 2 * n_freqs

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # [N, C] → [N, C * out_per_number]
        a = v[..., None] * self.freqs
        return torch.cat([v[..., None], a.sin(), a.cos()], -1).flatten(-2)


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.SiLU(), nn.Linear(hidden, out))


def _readout_width(config: EncoderConfig) -> int:
    """Inputs of the readout's last layer: the edge mean, then the output neurons' states."""
    return config.hidden * (1 + OUTPUTS * int(config.output_readout))


def _numbers(t: torch.Tensor, type_col: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a feature matrix into its numeric columns and its (integer) type column."""
    return torch.cat([t[:, :type_col], t[:, type_col + 1 :]], 1), t[:, type_col].long()


def _mean_by(values: torch.Tensor, index: torch.Tensor, inv_count: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` rows per ``index`` (0 where a group is empty), with precomputed 1 / count;
    sums at least in float32 (under bf16 autocast the values are bf16)."""
    values = values.to(torch.promote_types(values.dtype, torch.float32))
    out = values.new_zeros(inv_count.shape[0], values.shape[1]).index_add(0, index, values)
    return out * inv_count[:, None]


_WORKSPACE = threading.local()
WORKSPACE_BYTES = 128 << 20  # per thread; larger forwards (big batches) allocate afresh


def _workspace(shapes: list[tuple[int, int]], dtype: torch.dtype) -> list[torch.Tensor]:
    """Uninitialised tensors of these shapes for one fused forward, carved from a buffer that each
    thread keeps and reuses: fresh tensors of several MB page-fault on every call (measured: 10% of a
    paper-scale hash forward). Forwards needing more than ``WORKSPACE_BYTES`` allocate afresh."""
    sizes = [-(-math.prod(s) // 16) * 16 for s in shapes]  # 64-byte aligned pieces
    total = sum(sizes)
    with torch.inference_mode(False):  # normal tensors, so that a later call outside inference mode may write
        if total * dtype.itemsize > WORKSPACE_BYTES:
            flat = torch.empty(total, dtype=dtype)
        else:
            flat = getattr(_WORKSPACE, "buffer", None)
            if flat is None or flat.dtype != dtype or flat.numel() < total:
                flat = _WORKSPACE.buffer = torch.empty(total, dtype=dtype)
        out, offset = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            out.append(flat[offset : offset + math.prod(shape)].view(shape))
            offset += size
    return out


def _inv_count(index: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.bincount(index, minlength=n).clamp_(min=1).to(dtype).reciprocal_()


class Block(nn.Module):
    """One residual message-passing block: edges from (source, target, edge), then nodes from
    (node, mean of incoming edges, mean of outgoing edges)."""

    def __init__(self, h: int, update_nodes: bool = True):
        super().__init__()
        self.norm_n, self.norm_e = nn.LayerNorm(h), nn.LayerNorm(h)
        self.src, self.dst = nn.Linear(h, h, bias=False), nn.Linear(h, h, bias=False)
        self.edge_in, self.edge_out = nn.Linear(h, h), nn.Linear(h, h)
        self.node = _mlp(3 * h, h, h) if update_nodes else None
        self.norm_agg = nn.LayerNorm(2 * h) if update_nodes else None

    def forward(self, x, e, edge_index, inv_deg: tuple[torch.Tensor, torch.Tensor] | None = None):
        """``inv_deg``: (1 / in-degree, 1 / out-degree) per node, clamped at 1; computed if not given."""
        src, dst = edge_index
        xn = self.norm_n(x)
        pre = (
            self.src(xn).index_select(0, src)
            + self.dst(xn).index_select(0, dst)
            + self.edge_in(self.norm_e(e))
        )
        e = e + self.edge_out(F.silu(pre))
        if self.node is None:
            return x, e
        n = x.shape[0]
        if inv_deg is None:
            inv_deg = (_inv_count(dst, n, e.dtype), _inv_count(src, n, e.dtype))
        agg = torch.cat([_mean_by(e, dst, inv_deg[0]), _mean_by(e, src, inv_deg[1])], 1)
        x = x + self.node(torch.cat([xn, self.norm_agg(agg)], 1))
        return x, e


class GMNEncoder(nn.Module):
    """Parameter graph(s) → embeddings [B, embed_dim]. The graph readout ends in ReLU (non-negative);
    with ``field_readout`` the last ``4 * hidden`` entries are the field readout's."""

    def __init__(self, config: EncoderConfig | None = None):
        super().__init__()
        self.config = config = config or ENCODER_PRESETS["small"]
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
        self.probe_in = _mlp(N_PROBES, h, h) if config.probes else None
        self.output_norm = nn.LayerNorm(h) if config.output_readout else None
        self.field_in = _mlp(N_PROBES, h, h) if config.field_readout else None
        self.readout_out = nn.Linear(_readout_width(config), config.embed_dim - config.field_width)

    def forward(self, graphs: Data | Batch | list[Data]) -> torch.Tensor:
        if isinstance(graphs, list):
            graphs = Batch.from_data_list(graphs)
        x, e, edge_index = graphs.x, graphs.edge_attr, graphs.edge_index
        batch = getattr(graphs, "batch", None)
        n_graphs = graphs.num_graphs if batch is not None else 1
        edge_batch = batch.index_select(0, edge_index[0]) if batch is not None else None
        if self.config.probes and getattr(graphs, "probe", None) is None:
            raise InputError("the encoder uses probe features and these graphs have none (rebuild them)")
        if self.config.output_readout:
            t_n, t_o = NODE_FEATURES.index("type"), NODE_FEATURES.index("order")
            outputs = ((x[:, t_n] == OUTPUT) & (x[:, t_o] < OUTPUTS)).nonzero().squeeze(1)
            if outputs.numel() != OUTPUTS * n_graphs:
                raise InputError(f"every graph needs {OUTPUTS} output neurons to read out")
        else:
            outputs = None
        probe = self._probe_rows(x, graphs.probe) if self.config.probes else None
        field = self._field_rows(probe, outputs, x.shape[0]) if self.config.field_readout else None
        args = (x, e, edge_index, edge_batch, n_graphs, probe, outputs, field)
        if self.config.precision == "bf16":
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                return self._forward_autograd(*args).float()
        needs_grad = torch.is_grad_enabled() and (
            x.requires_grad or e.requires_grad or any(p.requires_grad for p in self.parameters())
        )
        if x.device.type == "cpu" and not needs_grad and len(self.blocks) > 0:
            with torch.no_grad():
                return self._forward_fused(*args)
        return self._forward_autograd(*args)

    @staticmethod
    def _probe_rows(x: torch.Tensor, probe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(MLP node indices, their probe activations): graphs carry probes for MLP neurons only."""
        types = x[:, NODE_FEATURES.index("type")]
        mlp = torch.isin(types, torch.tensor(MLP_NODE_TYPES, dtype=types.dtype)).nonzero().squeeze(1)
        if mlp.numel() != probe.shape[0]:
            raise InputError(f"graphs hold {mlp.numel()} MLP neurons but {probe.shape[0]} probe rows")
        return mlp, probe

    @staticmethod
    def _field_rows(probe: tuple[torch.Tensor, torch.Tensor], outputs: torch.Tensor, n: int) -> torch.Tensor:
        """The output neurons' probe rows [len(outputs), N_PROBES]: the field at the probe points."""
        rows, values = probe
        position = torch.full((n,), -1, dtype=torch.long, device=rows.device)
        position[rows] = torch.arange(len(rows), device=rows.device)
        return values.index_select(0, position[outputs])

    def _node_states(self, x_num, x_type, probe):
        """Initial node states: encoded numbers + type (+ probe activations on MLP neurons)."""
        h = self.node_in(self.sin(x_num)) + self.node_type(x_type)
        if probe is None:
            return h
        rows, values = probe
        return h.index_add(0, rows, self.probe_in(values).to(h.dtype))

    def _readout(self, pooled, h, outputs, n_graphs, field):
        """Embeddings from the pooled edge states and (optionally) the output neurons' states and
        their probe rows."""
        if outputs is not None:
            outs = self.output_norm(h.index_select(0, outputs)).reshape(n_graphs, -1)
            pooled = torch.cat([pooled, outs.to(pooled.dtype)], 1)
        z = F.relu(self.readout_out(pooled))
        if field is None:
            return z
        return torch.cat([z, self.field_in(field).reshape(n_graphs, -1).to(z.dtype)], 1)

    # ---- the plain path (autograd) ----------------------------------------------------------------
    def _forward_autograd(self, x, e, edge_index, edge_batch, n_graphs, probe, outputs, field):
        t_n, t_e = NODE_FEATURES.index("type"), EDGE_FEATURES.index("type")
        x_num, x_type = _numbers(x, t_n)
        e_num, e_type = _numbers(e, t_e)
        h = self._node_states(x_num, x_type, probe)
        he = self.edge_in(self.sin(e_num)) + self.edge_type(e_type)
        n = x.shape[0]
        src, dst = edge_index
        inv_deg = (_inv_count(dst, n, h.dtype), _inv_count(src, n, h.dtype))
        for block in self.blocks:
            h, he = block(h, he, edge_index, inv_deg)
        if edge_batch is None:
            edge_batch = torch.zeros_like(src)
        r = F.silu(self.readout_hidden(self.readout_norm(he)))
        pooled = _mean_by(r, edge_batch, _inv_count(edge_batch, n_graphs, r.dtype))
        return self._readout(pooled, h, outputs, n_graphs, field)

    # ---- the fused path (no autograd, CPU) --------------------------------------------------------
    def _forward_fused(self, x, e_attr, edge_index, edge_batch, n_graphs, probe, outputs, field):
        hd = self.config.hidden
        n, n_edges = x.shape[0], edge_index.shape[1]
        t_n, t_e = NODE_FEATURES.index("type"), EDGE_FEATURES.index("type")
        x_num, x_type = _numbers(x, t_n)
        dtype = self.node_in.weight.dtype
        src, dst = edge_index
        deg_in = torch.bincount(dst, minlength=n)
        inv_in, inv_out = deg_in.clamp(min=1).to(dtype).reciprocal_(), _inv_count(src, n, dtype)
        # per-node table: rows [0, n) the source projections (+ edge_in's bias), then the target
        # projections of the nodes that have incoming edges only (most spatial nodes have none)
        targets = deg_in.nonzero().squeeze(1)
        slot = torch.empty(n, dtype=torch.long)
        slot[targets] = torch.arange(n, n + targets.numel())
        pair = torch.stack([src, slot.index_select(0, dst)], 1)
        h, xn, sum_in, sum_out, table, e_state = _workspace(
            [(n, hd)] * 4 + [(n + targets.numel(), hd), (n_edges, hd)], dtype
        )
        torch.index_select(self.node_type.weight, 0, x_type, out=h)
        h.add_(self.node_in.bias).addmm_(self.sin(x_num), self.node_in.weight.t())
        if probe is not None:
            h.index_add_(0, probe[0], self.probe_in(probe[1]))
        # the edge pre-encoder's bias rides on the per-type table
        type_table = self.edge_type.weight + self.edge_in.bias
        w_pre = self.edge_in.weight.t()
        pooled = torch.zeros(n_graphs, hd, dtype=dtype)
        last = len(self.blocks) - 1
        for k, b in enumerate(self.blocks):
            for a in range(0, n, EDGE_CHUNK):
                xn[a : a + EDGE_CHUNK] = b.norm_n(h[a : a + EDGE_CHUNK])
            torch.addmm(b.edge_in.bias, xn, b.src.weight.t(), out=table[:n])
            torch.mm(xn.index_select(0, targets), b.dst.weight.t(), out=table[n:])
            w_in, w_out, b_out = b.edge_in.weight.t(), b.edge_out.weight.t(), b.edge_out.bias
            if k < last:
                sum_in.zero_()
                sum_out.zero_()
            for a in range(0, n_edges, EDGE_CHUNK):
                z = min(a + EDGE_CHUNK, n_edges)
                e_c = e_state[a:z]
                if k == 0:  # pre-encode this chunk's edges straight into the state
                    num, typ = _numbers(e_attr[a:z], t_e)
                    torch.index_select(type_table, 0, typ, out=e_c)
                    e_c.addmm_(self.sin(num), w_pre)
                pre = F.embedding_bag(pair[a:z], table, mode="sum")  # source + target projections
                pre.addmm_(F.layer_norm(e_c, (hd,), b.norm_e.weight, b.norm_e.bias), w_in)
                F.silu(pre, inplace=True)
                if k < last:
                    e_c.addmm_(pre, w_out).add_(b_out)
                    sum_in.index_add_(0, dst[a:z], e_c)
                    sum_out.index_add_(0, src[a:z], e_c)
                else:  # the last block updates edges only: go straight on to the readout
                    e_new = torch.addmm(b_out, pre, w_out).add_(e_c)
                    r = torch.addmm(
                        self.readout_hidden.bias,
                        F.layer_norm(e_new, (hd,), self.readout_norm.weight, self.readout_norm.bias),
                        self.readout_hidden.weight.t(),
                    )
                    F.silu(r, inplace=True)
                    if edge_batch is None:
                        pooled[0] += r.sum(0)
                    else:
                        pooled.index_add_(0, edge_batch[a:z], r)
            if k < last:  # node update, in chunks of nodes
                sum_in.mul_(inv_in[:, None])
                sum_out.mul_(inv_out[:, None])
                w1 = b.node[0].weight
                w1x, w1a, w2 = w1[:, :hd].t(), w1[:, hd:].t(), b.node[2].weight.t()
                for a in range(0, n, EDGE_CHUNK):
                    z = min(a + EDGE_CHUNK, n)
                    agg = b.norm_agg(torch.cat([sum_in[a:z], sum_out[a:z]], 1))
                    hid = torch.addmm(b.node[0].bias, xn[a:z], w1x).addmm_(agg, w1a)
                    F.silu(hid, inplace=True)
                    h[a:z].addmm_(hid, w2).add_(b.node[2].bias)
        if edge_batch is None:
            pooled /= max(n_edges, 1)
        else:
            pooled *= _inv_count(edge_batch, n_graphs, dtype)[:, None]
        return self._readout(pooled, h, outputs, n_graphs, field)


def forward_flops(config: EncoderConfig, graphs: Data | Batch, fused: bool = True) -> int:
    """Multiply-add FLOPs (2 per multiply-accumulate) of the matrix products of one forward pass.

    ``fused``: as the fused inference path runs it (target projections only for nodes with incoming
    edges); otherwise as the autograd path runs it (``torch.utils.flop_counter`` agrees with the latter).
    """
    h, k = config.hidden, 1 + 2 * config.n_freqs
    n, e = graphs.num_nodes, graphs.num_edges
    b = graphs.num_graphs if isinstance(graphs, Batch) else 1
    n_t = int((torch.bincount(graphs.edge_index[1], minlength=n) > 0).sum()) if fused else n
    macs = n * (len(NODE_FEATURES) - 1) * k * h + e * (len(EDGE_FEATURES) - 1) * k * h
    for i in range(config.blocks):
        macs += (n + n_t) * h * h + 2 * e * h * h
        if i < config.blocks - 1:
            macs += n * 4 * h * h
    if config.probes:
        macs += graphs.probe.shape[0] * (N_PROBES * h + h * h)
    if config.field_readout:
        macs += b * OUTPUTS * (N_PROBES * h + h * h)
    macs += e * h * h + b * _readout_width(config) * (config.embed_dim - config.field_width)
    return 2 * macs
