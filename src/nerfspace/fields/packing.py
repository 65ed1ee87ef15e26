"""Packed points: M points of K fields in one tensor, with ``net`` [M] naming each point's field.

Points are grouped by field (``net`` non-decreasing), so field k owns one contiguous segment and
per-field work runs on slices without padding every field to the largest point count.
"""

from __future__ import annotations

import torch


def segments(net: torch.Tensor, k: int) -> list[tuple[int, int, int]]:
    """(field, start, end) of every non-empty segment of a grouped ``net``."""
    counts = torch.bincount(net, minlength=k).tolist()
    out, start = [], 0
    for i, c in enumerate(counts):
        if c:
            out.append((i, start, start + c))
        start += c
    return out


def flat_net(k: int, p: int, device: torch.device | None = None) -> torch.Tensor:
    """``net`` of K fields with P points each, packed field by field."""
    return torch.arange(k, device=device).repeat_interleave(p)
