"""An opt-in CPU inference kernel of the GMN: `FusedGMN` computes `GMN`'s function, with its weights,
faster on the CPU without autograd (tests/test_encoder.py checks the two agree).

It walks the edges in chunks of ``EDGE_CHUNK`` so that every per-edge intermediate stays in cache and
the only [E, H] tensor is the edge state, updated in place; gathers both node projections and sums them
in one ``embedding_bag``; projects only the nodes that receive edges for the target side; folds per-edge
bias additions into per-node or per-type tables; accumulates the node means chunk by chunk with
precomputed degrees; and runs the last block's edge update and the readout in the same pass, so the
final edge states are never stored. Its big buffers come from a per-thread workspace reused across calls
(up to ``WORKSPACE_BYTES``). With autograd, on another device or in bf16 it runs `GMN`'s own path.
"""

from __future__ import annotations

import math
import threading

import torch
from torch.nn import functional as F
from torch_geometric.data import Batch, Data

from nerfspace.encoders.gmn import GMN, GraphBatch, numbers
from nerfspace.graphs.schema import EDGE_FEATURES

EDGE_CHUNK = 2048  # edges (and nodes) per step; a speed knob, not a result
WORKSPACE_BYTES = 128 << 20  # per thread; larger forwards (big batches) allocate afresh
_WORKSPACE = threading.local()


def _workspace(shapes: list[tuple[int, int]], dtype: torch.dtype) -> list[torch.Tensor]:
    """Uninitialised tensors of these shapes, carved from a buffer that each thread keeps and reuses
    (fresh tensors of several MB page-fault on every call)."""
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


def _inverse(counts: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """1 / count, with empty counts as 1 (a mean over nothing is zero)."""
    return counts.clamp(min=1).to(dtype).reciprocal_()


class FusedGMN(GMN):
    def forward(self, graphs: Data | Batch) -> torch.Tensor:
        needs_grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if needs_grad or graphs.x.device.type != "cpu" or self.config.precision != "fp32":
            return super().forward(graphs)
        with torch.no_grad():
            return self._fused(self.read(graphs))

    def flops(self, graphs: Data | Batch, fused: bool = True) -> int:
        return super().flops(graphs, fused)

    def _fused(self, g: GraphBatch) -> torch.Tensor:
        hd = self.config.hidden
        n, n_edges = g.x_num.shape[0], g.edge_index.shape[1]
        t_e = EDGE_FEATURES.index("type")
        dtype = self.node_in.weight.dtype
        src, dst = g.edge_index
        deg_in = torch.bincount(dst, minlength=n)
        inv_in, inv_out = _inverse(deg_in, dtype), _inverse(torch.bincount(src, minlength=n), dtype)
        # per-node table: rows [0, n) the source projections (+ edge_in's bias), then the target
        # projections of the nodes that have incoming edges only (most spatial nodes have none)
        targets = deg_in.nonzero().squeeze(1)
        slot = torch.empty(n, dtype=torch.long)
        slot[targets] = torch.arange(n, n + targets.numel())
        pair = torch.stack([src, slot.index_select(0, dst)], 1)
        h, xn, sum_in, sum_out, table, e_state = _workspace(
            [(n, hd)] * 4 + [(n + targets.numel(), hd), (n_edges, hd)], dtype
        )
        torch.index_select(self.node_type.weight, 0, g.x_type, out=h)
        h.add_(self.node_in.bias).addmm_(self.sin(g.x_num), self.node_in.weight.t())
        if g.probe is not None:
            h.index_add_(0, g.probe[0], self.probe_in(g.probe[1]))
        type_table = self.edge_type.weight + self.edge_in.bias  # the edge pre-encoder's bias rides on it
        w_pre = self.edge_in.weight.t()
        pooled = torch.zeros(g.n_graphs, hd, dtype=dtype)
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
                    num, typ = numbers(g.e_attr[a:z], t_e)
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
                    pooled.index_add_(0, g.edge_batch[a:z], r)
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
        pooled *= _inverse(torch.bincount(g.edge_batch, minlength=g.n_graphs), dtype)[:, None]
        return self.readout(pooled, h, g)
