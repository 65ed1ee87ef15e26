"""What training reads from a zoo: for every NeRF its encoder inputs and its render targets.

Targets are the NeRF's own renders (the rendering loss learns to re-render the NeRF, not the object):
``TARGET_VIEWS`` orbit views of ``TARGET_SIZE`` px, kept as foreground rays (non-zero opacity) with
their colours, plus the NeRF's occupancy grid. Inputs and targets are cached under the zoo's cache
folder, keyed by the NeRF file's content hash, so each is computed once per NeRF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nerfspace.cache import cached_tensors, file_hash
from nerfspace.encoders.inputs import cached_inputs, collate
from nerfspace.errors import InputError
from nerfspace.render import camera_rays, orbit_cameras, pack_bits, render_rays, unpack_bits
from nerfspace.zoo.items import Item
from nerfspace.zoo.storage import load_nerf

TARGET_VIEWS = 8
TARGET_SIZE = 32
MIN_OPACITY = 1e-3  # a ray counts as foreground above this
TARGET_KEYS = ("origins", "dirs", "rgb", "occupancy", "occupancy_res")


@dataclass
class Targets:
    """Foreground rays of a NeRF's own renders and its occupancy grid."""

    origins: torch.Tensor  # [N, 3]
    dirs: torch.Tensor  # [N, 3]
    rgb: torch.Tensor  # [N, 3]
    occupancy: torch.Tensor  # [R, R, R] bool


def render_targets(nerf_file: Path) -> Targets:
    """Render a NeRF from the target views and keep its foreground rays."""
    nerf = load_nerf(nerf_file)
    o, d = (t.reshape(1, -1, 3) for t in camera_rays(orbit_cameras(TARGET_VIEWS, TARGET_SIZE)))
    with torch.no_grad():
        rgb, opacity = render_rays(nerf.field(), o, d, nerf.occupancy[None])
    fg = opacity[0] > MIN_OPACITY
    if not fg.any():
        raise InputError(f"{nerf_file}: the NeRF renders nothing from the target views (empty field)")
    return Targets(o[0, fg], d[0, fg], rgb[0, fg], nerf.occupancy)


class ZooCache:
    """Encoder inputs and render targets of a zoo's NeRFs, cached in ``cache_dir`` by content hash."""

    def __init__(self, cache_dir: Path):
        self.dir = Path(cache_dir)
        self._digests: dict[Path, str] = {}

    def digest(self, path: Path) -> str:
        if path not in self._digests:
            self._digests[path] = file_hash(path)
        return self._digests[path]

    def inputs(
        self, items: Sequence[Item], needs: Sequence[str], views: Sequence[int] | None = None
    ) -> dict[str, Any]:
        """One batch of the encoder inputs ``needs`` names, of ``items`` (in ``views``, default view 0)."""
        views = views or [0] * len(items)
        rows = zip(items, views, strict=True)
        return collate([cached_inputs(it.file, self.dir, needs, self.digest(it.file), v) for it, v in rows])

    def targets(self, item: Item) -> Targets:
        def build():
            t = render_targets(item.file)
            res = torch.tensor([t.occupancy.shape[-1]])
            return {
                "origins": t.origins,
                "dirs": t.dirs,
                "rgb": t.rgb,
                "occupancy": pack_bits(t.occupancy),
                "occupancy_res": res,
            }

        entry = self.dir / f"{self.digest(item.file)}.targets.safetensors"
        t = cached_tensors(entry, TARGET_KEYS, build)
        occupancy = unpack_bits(t["occupancy"], int(t["occupancy_res"]))
        return Targets(t["origins"], t["dirs"], t["rgb"], occupancy)
