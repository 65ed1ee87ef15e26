"""No-learning baselines: features computed from a radiance field (`nerfspace.probe.Field`) by querying
it, with no training.

The three extractors compare fields point by point (`field_probe`, exact only when the fields share a
frame), after moving each field into a frame of its own density moments (`field_probe_canonical`), or
through features invariant to yaw, shift, scale and light strength by construction
(`nerfspace.invariant.field_invariant`).
`field_embeddings` turns a zoo's NeRFs into `Embeddings` with one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Literal

import torch

from nerfspace.embeddings import Embeddings
from nerfspace.invariant import field_invariant, moments
from nerfspace.probe import PROBE_POINTS, Field, field_probe, field_values, nerf_field
from nerfspace.zoo.items import Item
from nerfspace.zoo.storage import NeRF, load_nerf

# The canonical probe grid in units of the RMS radius: `PROBE_POINTS` (+-0.6) scaled by 1 / PROBE_RMS, so
# that an object of RMS radius PROBE_RMS is probed at its own frame's `PROBE_POINTS`.
PROBE_RMS = 0.3


def _signs(d: torch.Tensor, w: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """Third moments [3] of the weighted points ``d`` along the columns of ``axes``."""
    return w @ (d @ axes) ** 3


def canonical_frame(
    field: Field, mode: Literal["yaw", "axes"] = "yaw"
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """A frame of the field's own density, found without learning: (centre [3], rotation [3, 3] whose
    columns are the canonical axes in the field's frame, RMS radius). ``yaw`` keeps +z up and turns the
    principal axis of the horizontal second moments onto x; ``axes`` takes the three principal axes
    (largest first). Each axis's sign makes the third moment along it positive (for ``yaw``, of the
    horizontal axis with the larger third moment), keeping a proper rotation."""
    d, w, centre, cov = moments(field)
    rms = float(cov.trace().clamp(min=1e-12).sqrt())
    if mode == "yaw":
        _, vec = torch.linalg.eigh(cov[:2, :2])
        e1 = torch.cat([vec[:, 1], vec.new_zeros(1)])
        axes = torch.stack(
            [e1, torch.linalg.cross(e1.new_tensor([0.0, 0.0, 1.0]), e1), e1.new_tensor([0, 0, 1])]
        )
        axes = axes.T
        m3 = _signs(d, w, axes)
        i = int(m3[:2].abs().argmax())
        if m3[i] < 0:
            axes[:, :2] = -axes[:, :2]
    elif mode == "axes":
        _, vec = torch.linalg.eigh(cov)
        axes = vec.flip(1)
        m3 = _signs(d, w, axes)
        axes = axes * torch.where(m3 < 0, -1.0, 1.0).to(axes)
        if torch.linalg.det(axes) < 0:  # a reflection: flip back the axis whose sign is least certain
            i = int(m3.abs().argmin())
            axes[:, i] = -axes[:, i]
    else:
        raise ValueError(f"mode must be 'yaw' or 'axes', got {mode!r}")
    return centre, axes.float(), rms


def field_probe_canonical(field: Field, mode: Literal["yaw", "axes"] = "yaw") -> torch.Tensor:
    """`field_probe` in the field's `canonical_frame`: the probe grid, scaled by the RMS radius over
    `PROBE_RMS`, turned onto the canonical axes and centred on the density centre."""
    centre, axes, rms = canonical_frame(field, mode)
    points = centre + (PROBE_POINTS * (rms / PROBE_RMS)) @ axes.T
    return field_values(field, points).reshape(-1)


FIELD_BASELINES: dict[str, Callable[[Field], torch.Tensor]] = {
    "field-probe": lambda field: field_probe(field).reshape(-1),
    "field-probe+canonical": field_probe_canonical,
    "field-invariant": field_invariant,
}


def _item_dict(item: Item | dict) -> dict:
    d = asdict(item) if isinstance(item, Item) else dict(item)
    return {k: str(d[k]) for k in ("object", "category", "preset", "split", "file")}


def nerf_embeddings(
    items: Sequence[Item | dict], name: str, features: Callable[[NeRF], torch.Tensor]
) -> Embeddings:
    """Embeddings of NeRFs (zoo items, or dicts with their object, category, preset, split and file) by
    the no-learning ``features`` of each NeRF, recorded as the baseline ``name``."""
    rows, out_items = [], []
    for item in items:
        d = _item_dict(item)
        rows.append(features(load_nerf(d["file"])).float())
        out_items.append(d)
    return Embeddings(torch.stack(rows), out_items, {"baseline": name}, "")


def field_embeddings(
    items: Sequence[Item | dict], method: str, transform: Callable[[int, Field], Field] | None = None
) -> Embeddings:
    """Embeddings of NeRFs by the no-learning baseline ``method`` of `FIELD_BASELINES`;
    ``transform(i, field)``, if given, replaces the field of row i (e.g. a `moved_field`)."""
    if method not in FIELD_BASELINES:
        raise ValueError(f"unknown field baseline {method!r}; choose from {', '.join(FIELD_BASELINES)}")
    features, row = FIELD_BASELINES[method], iter(range(len(items)))

    def of(nerf: NeRF) -> torch.Tensor:
        field, i = nerf_field(nerf), next(row)
        return features(field if transform is None else transform(i, field))

    return nerf_embeddings(items, method, of)
