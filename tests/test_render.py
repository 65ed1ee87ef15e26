import math

import torch

from nerfspace.render import camera_rays, orbit_cameras, pack_bits, render_rays, unpack_bits


def slab(sigma0: float, half: float = 0.2):
    """A homogeneous red slab |z| < half of density sigma0."""

    def field(x, net):
        inside = x[..., 2].abs() < half
        rgb = torch.zeros(*x.shape[:-1], 3)
        rgb[..., 0] = 1.0
        return rgb, torch.where(inside, torch.full_like(x[..., 0], sigma0), torch.zeros_like(x[..., 0]))

    return field


def test_slab_transmittance_is_analytic():
    sigma0, half = 2.0, 0.2
    origins = torch.tensor([[[0.0, 0.0, 2.0], [0.1, -1.0, 1.0], [0.3, 0.3, -3.0]]])
    dirs = torch.tensor([[[0.0, 0.0, -1.0], [0.0, 0.6, -0.8], [0.0, 0.0, 1.0]]])
    color, opacity = render_rays(slab(sigma0, half), origins, dirs, samples_per_diagonal=2048)
    path = 2 * half / dirs[0, :, 2].abs()  # chord through the slab
    expected = 1 - torch.exp(-sigma0 * path)
    assert torch.allclose(opacity[0], expected, atol=5e-3)
    # red over white: R = 1, G = B = transmittance
    assert torch.allclose(color[0, :, 1], 1 - expected, atol=5e-3)
    assert torch.allclose(color[0, :, 0], torch.ones(3), atol=1e-5)


def test_rays_missing_the_box_see_the_background():
    origins = torch.tensor([[[0.0, 0.0, 2.0]]])
    dirs = torch.tensor([[[0.0, 0.0, 1.0]]])
    color, opacity = render_rays(slab(5.0), origins, dirs)
    assert opacity.item() == 0 and torch.allclose(color, torch.ones(3))


def test_occupancy_skips_only_empty_space():
    cams = orbit_cameras(2, 16)
    o, d = (t.reshape(1, -1, 3) for t in camera_rays(cams))
    field = slab(3.0, 0.1)
    full, _ = render_rays(field, o, d)
    occ = torch.zeros(1, 16, 16, 16, dtype=torch.bool)
    occ[..., 6:10] = True  # cells covering |z| < 0.175
    skipped, _ = render_rays(field, o, d, occupancy=occ)
    assert torch.allclose(full, skipped, atol=1e-5)
    empty, opacity = render_rays(field, o, d, occupancy=torch.zeros_like(occ))
    assert (opacity == 0).all() and torch.allclose(empty, torch.ones_like(empty))


def test_gradients_flow_through_rendering():
    sigma = torch.tensor(1.5, requires_grad=True)

    def field(x, net):
        return torch.full((*x.shape[:-1], 3), 0.5), sigma.expand(x.shape[:-1])

    _, opacity = render_rays(
        field,
        torch.tensor([[[0.0, 0.0, 2.0]]]),
        torch.tensor([[[0.0, 0.0, -1.0]]]),
        samples_per_diagonal=1024,
    )
    opacity.sum().backward()
    # d/dsigma (1 - exp(-sigma * 1.4)) = 1.4 exp(-sigma * 1.4)
    assert math.isclose(sigma.grad.item(), 1.4 * math.exp(-1.5 * 1.4), rel_tol=1e-2)


def test_bit_packing_round_trip():
    occ = torch.rand(2, 8, 8, 8) > 0.5
    bits = pack_bits(occ)
    assert bits.dtype == torch.uint8 and bits.shape == (2, 64)
    assert torch.equal(unpack_bits(bits, 8), occ)
