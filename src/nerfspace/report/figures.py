"""Evaluation figures as PNG bytes: 2-D embedding maps, confusion matrices, a retrieval gallery."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from nerfspace.render import orbit_cameras  # noqa: E402
from nerfspace.zoo.storage import load_nerf  # noqa: E402

GALLERY_SIZE = 64  # px of each render in the retrieval gallery


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def embedding_map(xy: list[list[float]], labels: list[str], title: str) -> bytes:
    """Scatter of 2-D coordinates coloured by ``labels`` (category or architecture)."""
    xy_a = np.asarray(xy)
    names = sorted(set(labels), key=labels.index)
    cmap = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for i, name in enumerate(names):
        m = np.array([lab == name for lab in labels])
        ax.scatter(xy_a[m, 0], xy_a[m, 1], s=14, color=cmap(i % 20), label=name, alpha=0.85, linewidths=0)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    return _png(fig)


def confusion(matrix: list[list[int]], labels: list[str], title: str) -> bytes:
    """Confusion matrix (rows: true category, columns: predicted), row-normalised shading."""
    m = np.asarray(matrix, dtype=float)
    shade = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    for (r, c), v in np.ndenumerate(m):
        if v:
            ax.text(
                c,
                r,
                int(v),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if shade[r, c] > 0.5 else "k",
            )
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _png(fig)


@torch.no_grad()
def _render(file: str) -> np.ndarray:
    return load_nerf(Path(file)).render(orbit_cameras(1, GALLERY_SIZE, offset=0.3))[0].clamp(0, 1).numpy()


def retrieval_gallery(examples: list[dict]) -> bytes:
    """One row per example: the query's render, then its nearest NeRFs' renders with architecture,
    category and cosine score; a matching object is titled in green."""
    cols = 1 + max(len(e["hits"]) for e in examples)
    fig, axes = plt.subplots(len(examples), cols, figsize=(1.45 * cols, 1.7 * len(examples)), squeeze=False)
    for row, e in zip(axes, examples, strict=True):
        q = e["query"]
        cells = [(q, f"query\n{q['preset']}\n{q['category']}", "k")]
        for h in e["hits"]:
            color = "green" if h["object"] == q["object"] else "k"
            cells.append((h, f"{h['preset']} {h['score']:.2f}\n{h['category']}", color))
        for ax in row:
            ax.axis("off")
        for ax, (item, title, color) in zip(row, cells, strict=False):
            ax.imshow(_render(item["file"]))
            ax.set_title(title, fontsize=6.5, color=color)
    return _png(fig)
