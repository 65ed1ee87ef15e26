import math

import pytest
import torch

from nerfspace import fields
from nerfspace.archs import get_preset
from nerfspace.evaluation.field_features import field_invariant, field_probe_canonical
from nerfspace.frames import Similarity, yaw_tilt_rotation
from nerfspace.probe import field_probe, moved_field, nerf_field
from nerfspace.render import cell_centers
from nerfspace.zoo.storage import NeRF

# cosine similarity that a feature must keep under a yaw, shift (and scale) of the field; the moment grid
# and the probe points do not move with the field, so the features are invariant only up to sampling
INVARIANT_COS = 0.99


def _blob(x: torch.Tensor, parts: list[tuple[tuple[float, ...], tuple[float, ...]]]) -> torch.Tensor:
    """Soft union of ellipsoids (centre, semi-axes): a smooth density."""
    q = torch.stack([(((x - x.new_tensor(c)) / x.new_tensor(a)) ** 2).sum(-1) for c, a in parts])
    q = q.min(0).values
    return 40.0 * torch.sigmoid(8.0 * (1.0 - q))


def analytic_field(variant: int = 0):
    """An asymmetric object (a body with two knobs) whose colour varies over space; like a NeRF's field
    with its occupancy mask, it is black where it is empty."""
    body = ((0.0, 0.0, 0.0), (0.35, 0.2, 0.15))
    knobs = [((0.25, 0.1, 0.12), (0.1, 0.1, 0.1)), ((-0.12, -0.12, -0.08), (0.08, 0.08, 0.08))]
    if variant:  # another object: taller, one knob, other colours
        body = ((0.0, 0.0, 0.0), (0.18, 0.18, 0.35))
        knobs = [((-0.2, 0.15, 0.1), (0.12, 0.06, 0.15))]
    tint = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.5, -2.0], [-1.0, 0.5, 3.0]]) * (1 - 2 * variant)

    def field(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sigma = _blob(x, [body, *knobs])
        return torch.sigmoid(x @ tint) * (sigma > 1.0)[:, None], sigma

    return field


def _yaw(deg: float) -> torch.Tensor:
    return yaw_tilt_rotation(math.radians(deg), 0.0, 0.0)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.reshape(-1), b.reshape(-1), dim=0))


def test_field_probe_matches_itself_and_not_another_field():
    f, g = analytic_field(0), analytic_field(1)
    a = field_probe(f)
    assert a.shape == (16**3, 4)
    assert torch.allclose(a, field_probe(f), atol=1e-6)
    assert _cos(a, field_probe(g)) < 0.95


@pytest.mark.parametrize("yaw", [40.0, 137.0, 250.0])
def test_field_invariant_under_yaw_and_shift(yaw):
    f = analytic_field(0)
    base = field_invariant(f)
    moved = field_invariant(moved_field(f, Similarity(_yaw(yaw), torch.tensor([0.07, -0.05, 0.04]), 1.0)))
    assert _cos(base, moved) > INVARIANT_COS
    assert _cos(base, field_invariant(analytic_field(1))) < _cos(base, moved) - 0.02


@pytest.mark.parametrize("mode", ["yaw", "axes"])
@pytest.mark.parametrize("yaw", [40.0, 250.0])
def test_field_probe_canonical_under_yaw_shift_and_scale(mode, yaw):
    f = analytic_field(0)
    base = field_probe_canonical(f, mode)
    moved = field_probe_canonical(
        moved_field(f, Similarity(_yaw(yaw), torch.tensor([-0.06, 0.08, 0.03]), 0.85)), mode
    )
    assert _cos(base, moved) > INVARIANT_COS
    # without the canonical frame the same move breaks point-by-point comparison
    plain = field_probe(moved_field(f, Similarity(_yaw(yaw), torch.tensor([-0.06, 0.08, 0.03]), 0.85)))
    assert _cos(field_probe(f), plain) < INVARIANT_COS - 0.1


def test_nerf_field_zeroes_empty_cells():
    spec = get_preset("mlp")
    params = {n: t[0] for n, t in fields.init_params(spec, 1, torch.Generator().manual_seed(0)).items()}
    res = 8
    occupancy = torch.zeros(res, res, res, dtype=torch.bool)
    occupancy[: res // 2] = True  # cells with x < 0
    field = nerf_field(NeRF(spec, params, occupancy))
    x = cell_centers(res)
    rgb, sigma = field(torch.cat([x, torch.tensor([[0.9, 0.0, 0.0], [-0.9, 0.0, 0.0]])]))
    full_rgb, full_sigma = fields.query(spec, {n: t[None] for n, t in params.items()}, x[None])
    occupied = occupancy.reshape(-1)
    assert torch.allclose(rgb[:-2][occupied], full_rgb[0][occupied], atol=1e-5)
    assert torch.allclose(sigma[:-2][occupied], full_sigma[0][occupied], rtol=1e-4, atol=1e-5)
    assert (full_sigma[0][~occupied] > 0).all()  # the raw field is not empty there ...
    assert torch.allclose(sigma[:-2][~occupied], torch.zeros(()), atol=1e-12)  # ... the NeRF's field is
    assert torch.allclose(rgb[:-2][~occupied], torch.zeros(()), atol=1e-12)
    assert torch.allclose(sigma[-2:], torch.zeros(()), atol=1e-12)  # outside the scene box
