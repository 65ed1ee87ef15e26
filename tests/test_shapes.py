"""Procedural objects: determinism, placement, exact rendering, density/colour fields, primitives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nerfspace.errors import InputError
from nerfspace.render import camera_rays, orbit_cameras
from nerfspace.shapes import (
    BETA,
    CATEGORIES,
    SIGMA_MAX,
    Assembly,
    contact_sheet,
    make_object,
    render_views,
    shaded_color,
    sphere_trace,
)
from nerfspace.shapes.sdf import LIGHT_DIR, sd_box, sd_cone, sd_cylinder, sd_ellipsoid
from nerfspace.shapes.shading import AMBIENT, DIFFUSE
from nerfspace.shapes.trace import HIT_EPS

CAMS = orbit_cameras(3, 24)


def _points(n: int = 2000, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, generator=torch.Generator().manual_seed(seed)) * 1.4 - 0.7


def _grid(res: int) -> torch.Tensor:
    axis = torch.linspace(-0.7, 0.7, res)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def test_categories_are_the_shapenet_thirteen():
    assert len(CATEGORIES) == 13 and len(set(CATEGORIES)) == 13
    assert CATEGORIES[0] == "airplane" and CATEGORIES[-1] == "watercraft"


def test_unknown_category_names_the_valid_ones():
    with pytest.raises(InputError, match="watercraft"):
        make_object("spaceship", 0)
    with pytest.raises(InputError):
        make_object("chair", -1)


def test_same_seed_same_object_different_seed_different_object():
    x = _points()
    a, b, c = make_object("chair", 3), make_object("chair", 3), make_object("chair", 4)
    assert torch.equal(a.sdf(x), b.sdf(x)) and torch.equal(a.albedo(x), b.albedo(x))
    assert torch.equal(render_views(a, CAMS), render_views(b, CAMS))
    assert not torch.allclose(a.sdf(x), c.sdf(x))
    assert not torch.allclose(make_object("table", 3).sdf(x), a.sdf(x))


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_fits_the_box_and_is_visible(category):
    x = _grid(26)
    rim = x.abs().amax(-1) >= 0.6
    for seed in range(3):
        obj = make_object(category, seed)
        assert (obj.sdf(x[rim]) > 0).all(), f"{category} {seed} leaves [-0.6, 0.6]^3"
        low, high = obj.bounds
        assert float((high - low).max()) > 0.9, f"{category} {seed} is too small"
        rgb, alpha = sphere_trace(obj, *camera_rays(CAMS))
        assert alpha.mean() > 0.01
        assert rgb.shape == (3, 24, 24, 3) and set(alpha.unique().tolist()) <= {0.0, 1.0}


def test_instances_vary_within_a_category():
    x = _grid(20)
    solids = [make_object("airplane", s).sdf(x) < 0 for s in range(4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert (solids[i] != solids[j]).float().mean() > 0.002


def test_colours_are_independent_of_the_category():
    x = _points(4000)
    means = torch.stack([make_object("sofa", s).albedo(x).mean(0) for s in range(6)])
    assert means.std(0).max() > 0.05
    albedo = torch.cat([make_object(c, 0).albedo(x) for c in CATEGORIES])
    assert albedo.min() >= 0.1 - 1e-6 and albedo.max() <= 0.9 + 1e-6


def _sphere(radius: float = 0.4):
    a = Assembly()
    a.sphere((0.0, 0.0, 0.0), radius)
    return a.to_object("sphere", 0, np.array([[0.5, 0.6, 0.7]]), blend=1e-3)


def test_sphere_trace_matches_the_analytic_sphere():
    radius, obj = 0.4, _sphere(0.4)
    origins, dirs = camera_rays(orbit_cameras(4, 32))
    rgb, alpha = sphere_trace(obj, origins, dirs)
    t_closest = -(origins * dirs).sum(-1)
    miss_distance = (origins + t_closest[..., None] * dirs).norm(dim=-1)
    clear = (miss_distance - radius).abs() > 2e-3
    assert torch.equal(alpha.bool()[clear], (miss_distance < radius)[clear])
    assert (rgb[alpha == 0] == 1.0).all()
    hit = alpha.bool()
    t_hit = t_closest - (radius**2 - miss_distance**2).clamp_min(0).sqrt()
    normal = torch.nn.functional.normalize(origins + t_hit[..., None] * dirs, dim=-1)[hit]
    shading = AMBIENT + DIFFUSE * (normal @ LIGHT_DIR).clamp_min(0)
    expected = torch.tensor([0.5, 0.6, 0.7]) * shading[:, None]
    assert (rgb[hit] - expected).abs().max() < 0.02


def test_density_and_shaded_colour_match_the_images():
    obj = _sphere(0.4)
    inside, outside = torch.tensor([[0.0, 0.0, 0.3]]), torch.tensor([[0.0, 0.0, 0.45]])
    assert obj.density(inside).item() == pytest.approx(SIGMA_MAX, rel=1e-3)
    assert obj.density(outside).item() < 1e-3 * SIGMA_MAX
    assert obj.density(torch.tensor([[0.0, 0.0, 0.4]])).item() == pytest.approx(SIGMA_MAX / 2, rel=0.05)
    assert BETA > 0
    chair = make_object("chair", 1)
    origins, dirs = camera_rays(CAMS)
    rgb, alpha = sphere_trace(chair, origins, dirs)
    hit = alpha.bool()
    o, d = origins[hit], dirs[hit]
    t = torch.zeros(len(o))  # re-find the hit points from the camera and check the field colour there
    for _ in range(300):
        dist = chair.sdf(o + t[:, None] * d)
        t = t + torch.where(dist < HIT_EPS, 0.0, dist)
    error = (shaded_color(chair, o + t[:, None] * d) - rgb[hit]).abs().amax(-1)
    assert (error < 0.01).float().mean() > 0.95  # hit points differ a little on grazing rays only


def test_volume_rendered_density_matches_the_traced_silhouette():
    obj = make_object("table", 2)
    origins, dirs = (r.reshape(-1, 3) for r in camera_rays(orbit_cameras(1, 32)))
    t = torch.linspace(1.2, 2.8, 512)
    sigma = obj.density((origins[:, None] + t[None, :, None] * dirs[:, None]).reshape(-1, 3)).view(-1, 512)
    opacity = 1 - torch.exp(-sigma.sum(1) * (t[1] - t[0]))
    traced = sphere_trace(obj, origins, dirs)[1].bool()
    volume = opacity > 0.5
    assert (volume & traced).sum() / (volume | traced).sum() > 0.85


def test_primitives_are_exact_on_simple_points():
    q = tuple(torch.tensor(v) for v in ([0.0, 2.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]))
    one = torch.tensor(1.0)
    assert torch.allclose(sd_box(q, (one, one, one)), torch.tensor([-1.0, 1.0, 2.0, -0.5]))
    assert torch.allclose(sd_cylinder(q, one, one), torch.tensor([-1.0, 1.0, 2.0, -0.5]))
    assert torch.allclose(sd_cone(q, one, one, one), sd_cylinder(q, one, one))
    assert torch.allclose(sd_ellipsoid(q, (one, one, one)), q[0].hypot(q[2]) - 1)
    narrow = sd_cone(q, one, one, torch.tensor(0.0))  # a true cone: radius 1 at z = -1, tip at z = 1
    assert narrow[0] < 0 and narrow[2] == pytest.approx(2.0)


def test_render_views_and_contact_sheet(tmp_path):
    images = render_views(make_object("car", 0), CAMS)
    assert images.shape == (3, 24, 24, 3) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    path = tmp_path / "sheet.png"
    contact_sheet(path, per_category=1, size=24)
    with Image.open(path) as image:
        assert image.size[1] == 13 * 24
