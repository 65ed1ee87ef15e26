"""Fields and the fixed points they are read at.

A `Field` is anything that maps points [N, 3] to (rgb [N, 3], sigma [N]); `nerf_field` makes one of a
stored NeRF, `moved_field` puts a field in another frame. `field_probe` reads a field at `PROBE_POINTS`,
a 16^3 grid spanning the objects (a placed object's longest side is at most 1.15 scene units): the input
of the field encoder and of the `field-probe` baseline. Measurements of the grid's choice:
docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from nerfspace import fields
from nerfspace.archs import SCENE_BOX
from nerfspace.frames import Similarity
from nerfspace.render import cell_index
from nerfspace.zoo.storage import NeRF

Field = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""A radiance field: points [N, 3] -> (rgb [N, 3] in [0, 1], density sigma [N] >= 0)."""

_GRID = torch.linspace(-0.6, 0.6, 16)
PROBE_POINTS = torch.cartesian_prod(_GRID, _GRID, _GRID)
N_PROBES = PROBE_POINTS.shape[0]
CHANNELS = 4  # rgb and sigma / (1 + sigma)

CHUNK = 1 << 16  # points per field query


def squash(sigma: torch.Tensor) -> torch.Tensor:
    """Density as the encoders read it: sigma / (1 + sigma), in [0, 1)."""
    return sigma / (1 + sigma)


def nerf_field(nerf: NeRF) -> Field:
    """A NeRF's field, reading zero rgb and density outside the scene box and in the cells its occupancy
    grid marks empty (the renderer never looks there, so the field there is untrained noise). Only the
    points in occupied cells are evaluated."""
    params = nerf.batched()
    occupancy = nerf.occupancy.reshape(-1).bool()
    res = nerf.occupancy.shape[-1]

    def field(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inside = (x.abs() <= SCENE_BOX).all(-1)
        keep = inside & occupancy[cell_index(x, res)]
        rgb, sigma = x.new_zeros(len(x), 3), x.new_zeros(len(x))
        if keep.any():
            r, s = fields.query(nerf.spec, params, x[keep][None])
            rgb[keep], sigma[keep] = r[0], s[0]
        return rgb, sigma

    return field


def moved_field(field: Field, pose: Similarity) -> Field:
    """``field`` seen in the frame ``pose`` maps it into: the moved field at x is ``field`` at
    ``pose.inverse(x)``."""
    return lambda x: field(pose.inverse(x))


@torch.no_grad()
def query_field(field: Field, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The field at points [N, 3], in chunks of `CHUNK`: (rgb [N, 3], sigma [N]), float32."""
    out = [field(c) for c in x.split(CHUNK)]
    return torch.cat([o[0] for o in out]).float(), torch.cat([o[1] for o in out]).float()


def field_values(field: Field, x: torch.Tensor) -> torch.Tensor:
    """[N, 4]: rgb and sigma / (1 + sigma) at points [N, 3]."""
    rgb, sigma = query_field(field, x)
    return torch.cat([rgb, squash(sigma)[:, None]], 1)


def field_probe(field: Field) -> torch.Tensor:
    """The field at `PROBE_POINTS`: [N_PROBES, 4] (rgb, sigma / (1 + sigma))."""
    return field_values(field, PROBE_POINTS)
