"""Image helpers: tensors to PNG."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image

from nerfspace.atomic import atomic_write_bytes


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] → uint8."""
    return (images.clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def tile(images: torch.Tensor, cols: int | None = None) -> torch.Tensor:
    """[N, H, W, 3] → one [rows*H, cols*W, 3] grid (row-major; one row by default)."""
    n, h, w, c = images.shape
    cols = cols or n
    rows = -(-n // cols)
    pad = torch.ones(rows * cols - n, h, w, c, dtype=images.dtype) * (
        255 if images.dtype == torch.uint8 else 1.0
    )
    grid = torch.cat([images, pad]).reshape(rows, cols, h, w, c)
    return grid.permute(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def save_png(path: Path, images: torch.Tensor, cols: int | None = None) -> None:
    """Write [H, W, 3] or [N, H, W, 3] float images (tiled) to a PNG, atomically."""
    img = images if images.dim() == 3 else tile(images, cols)
    buf = io.BytesIO()
    Image.fromarray(to_uint8(img).numpy()).save(buf, format="PNG")
    atomic_write_bytes(Path(path), buf.getvalue())
