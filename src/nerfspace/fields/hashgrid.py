"""Multi-resolution hash grid (Instant-NGP) with tiny-cuda-nn's exact indexing.

Level ``l`` has scale ``base * s^l - 1`` and resolution ``ceil(scale) + 1``; its table holds
``min(res^3 rounded up to 8, 2^log2_size)`` entries (see `ArchSpec.hash_table_sizes`). A level whose
dense grid fits its table is indexed densely (x + y*res + z*res^2), otherwise by the coherent prime
hash (x * 1) ^ (y * 2654435761) ^ (z * 805459861) in uint32, both modulo the table size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nerfspace.fields.packing import flat_net

PRIMES = (1, 2654435761, 805459861)


def grid_index(pos_grid: torch.Tensor, res: int, table_size: int) -> torch.Tensor:
    """Table index of integer grid points ``pos_grid`` [..., 3] (int64) on one level."""
    if res**3 <= table_size:
        idx = pos_grid[..., 0] + pos_grid[..., 1] * res + pos_grid[..., 2] * res * res
    else:
        h = pos_grid * torch.tensor(PRIMES, dtype=torch.int64, device=pos_grid.device)
        idx = (h[..., 0] ^ h[..., 1] ^ h[..., 2]) & 0xFFFFFFFF
    return idx % table_size


class _Interpolate(torch.autograd.Function):
    """Weighted sum of table rows: forward by `embedding_bag`, backward by one `index_add_`
    (several times faster on CPU than either op's own backward). Gradients reach the table only."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(idx, weights)
        ctx.rows = table.shape[0]
        return F.embedding_bag(idx, table, per_sample_weights=weights, mode="sum")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        idx, weights = ctx.saved_tensors
        rows = (weights[..., None] * grad[:, None, :]).reshape(-1, grad.shape[-1])
        return grad.new_zeros(ctx.rows, grad.shape[-1]).index_add_(0, idx.reshape(-1), rows), None, None


def level_scales(spec) -> list[float]:
    s = spec.hash_per_level_scale
    return [spec.hash_base_res * s**lvl - 1.0 for lvl in range(spec.hash_levels)]


def _corner_index(lower: torch.Tensor, res: torch.Tensor, size: torch.Tensor, dense: bool) -> torch.Tensor:
    """Table index of the 8 corners (c0, c1, c2 bits, c2 fastest) of cells with lower vertex
    ``lower`` [..., L, 3] on levels of resolution ``res`` [L] and table size ``size`` [L]."""
    v = lower[..., None] + torch.arange(2, device=lower.device)  # [..., L, 3, 2]
    if dense:
        t = v * torch.stack([torch.ones_like(res), res, res * res], -1)[:, :, None]
        idx = t[..., 0, :, None, None] + t[..., 1, None, :, None] + t[..., 2, None, None, :]
        return (idx % size[:, None, None, None]).flatten(-3)
    t = (v * torch.tensor(PRIMES, device=lower.device)[:, None]) & 0xFFFFFFFF
    idx = t[..., 0, :, None, None] ^ t[..., 1, None, :, None] ^ t[..., 2, None, None, :]
    return (idx & (size[:, None, None, None] - 1)).flatten(-3)  # hashed tables are 2^log2_size


def hash_features(
    tables: list[torch.Tensor], x01: torch.Tensor, spec, net: torch.Tensor | None = None
) -> torch.Tensor:
    """Trilinear hash-grid features. ``tables``: per level [K, T_l, F]; ``x01`` [K, P, 3] in [0, 1]
    → [K, P, levels * F], or packed ``x01`` [M, 3] of fields ``net`` [M] → [M, levels * F]. Features
    are level-major; all fields, levels and corners are gathered in one call."""
    if net is None:
        k, p, _ = x01.shape
        width = len(tables) * tables[0].shape[-1]
        return hash_features(tables, x01.reshape(-1, 3), spec, flat_net(k, p, x01.device)).reshape(
            k, p, width
        )
    k = tables[0].shape[0]
    dev = x01.device
    sizes = torch.tensor([t.shape[1] for t in tables], device=dev)
    res = torch.tensor(spec.hash_resolutions, device=dev)
    scales = torch.tensor(level_scales(spec), dtype=x01.dtype, device=dev)
    pos = x01[:, None, :] * scales[:, None] + 0.5  # [M, L, 3]
    lower = torch.floor(pos)
    frac = pos - lower
    lower = lower.long()
    dense = res**3 <= sizes
    if dense.all() or not dense.any():
        idx = _corner_index(lower, res, sizes, bool(dense[0]))
    else:
        idx = torch.empty(x01.shape[0], len(tables), 8, dtype=torch.long, device=dev)
        for flag in (True, False):
            lv = dense == flag
            idx[:, lv] = _corner_index(lower[:, lv], res[lv], sizes[lv], flag)
    total = int(sizes.sum())
    offsets = (torch.cumsum(sizes, 0) - sizes) + (net * total)[:, None]  # [M, L]
    idx = idx + offsets[..., None]
    w = torch.stack([1 - frac, frac], -1)  # [M, L, 3, 2]
    w = (w[..., 0, :, None, None] * w[..., 1, None, :, None] * w[..., 2, None, None, :]).flatten(-3)
    flat = torch.cat(tables, dim=1).reshape(k * total, -1)
    out = _Interpolate.apply(flat, idx.reshape(-1, 8), w.reshape(-1, 8))
    return out.reshape(x01.shape[0], len(tables) * tables[0].shape[-1])  # explicit: M may be 0
