import math

import pytest
import torch

from nerfspace import fields
from nerfspace.archs import PRESETS, ArchSpec, get_preset
from nerfspace.fields.encoding import frequency_encode
from nerfspace.fields.hashgrid import grid_index, hash_features
from nerfspace.fields.triplane import cell_positions, triplane_features


def test_hash_index_matches_hand_computed_values():
    # (x*1) ^ (y*2654435761) ^ (z*805459861) in uint32, modulo the table size
    pts = torch.tensor([[1, 2, 3], [0, 0, 0], [7, 0, 5], [100, 200, 300]])
    assert grid_index(pts, res=64, table_size=256).tolist() == [220, 0, 238, 176]
    assert grid_index(pts, res=64, table_size=4096).tolist() == [1500, 0, 1518, 176]


def test_dense_levels_index_linearly():
    pts = torch.tensor([[1, 2, 3], [15, 15, 15]])
    assert grid_index(pts, res=16, table_size=4096).tolist() == [1 + 2 * 16 + 3 * 256, 4095]


def test_hash_grid_interpolates_a_dense_level_exactly():
    # one dense level of res 4 (scale 3): grid vertex (i, j, k) sits at x01 = (i, j, k) / 3 - 0.5/3
    spec = ArchSpec("hash", hash_levels=1, hash_log2_size=8, hash_features=1, hash_base_res=4, hash_max_res=4)
    assert spec.hash_table_sizes == [64]
    table = torch.arange(64, dtype=torch.float32).reshape(1, 64, 1)
    vertex = torch.tensor([2.0, 1.0, 3.0])
    x01 = ((vertex - 0.5) / 3).reshape(1, 1, 3)
    assert math.isclose(hash_features([table], x01, spec).item(), 2 + 1 * 4 + 3 * 16, rel_tol=1e-6)
    mid = ((vertex + 0.5 - 0.5) / 3).reshape(1, 1, 3)  # half-way to vertex (3, 2, 4) on every axis
    corners = [((2 + a) + (1 + b) * 4 + (3 + c) * 16) % 64 for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    assert torch.isclose(hash_features([table], mid, spec), table[0, corners, 0].mean()).all()


def test_frequency_encoding_order_is_tcnn():
    x = torch.tensor([[0.25, 0.5, 0.75]])
    enc = frequency_encode(x, 2)
    assert enc.shape == (1, 12)
    # dim 1 (0.5), frequency 2^1: sin(2 * pi * 0.5), cos(...)
    assert torch.allclose(
        enc[0, 4 + 2 : 4 + 4], torch.tensor([math.sin(math.pi), math.cos(math.pi)]), atol=1e-6
    )


def test_triplane_sampling_at_cell_centres():
    res, nf = 5, 3
    planes = torch.randn(1, 3, res, res, nf)
    pos = cell_positions(res)
    # a point on the grid vertex of all three planes: the sum of the three cells
    i, j, k = 1, 3, 4
    x = torch.tensor([pos[0, i, j, 0], pos[0, i, j, 1], pos[1, i, k, 2]]).reshape(1, 1, 3)
    expected = planes[0, 0, i, j] + planes[0, 1, i, k] + planes[0, 2, j, k]
    assert torch.allclose(triplane_features(planes, x)[0, 0], expected, atol=1e-5)


def test_batched_equals_one_at_a_time_and_outputs_are_valid():
    x = torch.rand(3, 50, 3) * 1.4 - 0.7
    for name in PRESETS:
        spec = get_preset(name)
        params = fields.init_params(spec, 3, torch.Generator().manual_seed(1))
        rgb, sigma = fields.query(spec, params, x)
        assert rgb.shape == (3, 50, 3) and sigma.shape == (3, 50)
        assert (rgb > 0).all() and (rgb < 1).all() and (sigma >= 0).all()
        one_rgb, one_sigma = fields.query(spec, {n: t[1:2] for n, t in params.items()}, x[1:2])
        assert torch.allclose(one_rgb[0], rgb[1], atol=1e-5) and torch.allclose(
            one_sigma[0], sigma[1], rtol=1e-4
        )


def test_mlp_field_matches_a_plain_torch_network():
    spec = get_preset("mlp")
    params = fields.init_params(spec, 1, torch.Generator().manual_seed(0))
    x = torch.rand(1, 20, 3) * 1.4 - 0.7
    h = frequency_encode((x[0] + 0.7) / 1.4, spec.n_freqs)
    for i in range(spec.hidden_layers + 1):
        h = h @ params[f"mlp.{i}.weight"][0].T
        if i < spec.hidden_layers:
            h = torch.relu(h)
    rgb, sigma = fields.query(spec, params, x)
    assert torch.allclose(rgb[0], torch.sigmoid(h[:, :3]), atol=1e-6)
    assert torch.allclose(sigma[0], torch.exp(h[:, 3] - 1), rtol=1e-5)


def test_padding_rows_and_columns_start_at_zero():
    spec = get_preset("hash")
    params = fields.init_params(spec, 2)
    assert (params["mlp.0.weight"][:, :, spec.spatial_dim :] == 0).all()
    assert (params[f"mlp.{spec.hidden_layers}.weight"][:, 4:] == 0).all()


def test_mixed_dense_and_hashed_levels_match_a_per_point_reference():
    spec = get_preset("hash_t13", "paper")  # level 0 dense (16^3 < 2^13), levels 1-3 hashed
    params = fields.init_params(spec, 1, torch.Generator().manual_seed(3))
    tables = [params[f"hash.level{i}"][0] for i in range(spec.hash_levels)]
    x01 = torch.rand(1, 6, 3, generator=torch.Generator().manual_seed(4))
    got = hash_features([t[None] for t in tables], x01, spec)[0]
    s = spec.hash_per_level_scale
    for n in range(6):
        ref = []
        for lvl, (table, res) in enumerate(zip(tables, spec.hash_resolutions, strict=True)):
            pos = x01[0, n] * (spec.hash_base_res * s**lvl - 1) + 0.5
            lo, frac = torch.floor(pos), pos - torch.floor(pos)
            acc = torch.zeros(spec.hash_features)
            for c in range(8):
                bits = torch.tensor([(c >> d) & 1 for d in range(3)])
                w = torch.where(bits.bool(), frac, 1 - frac).prod()
                acc += w * table[grid_index((lo.long() + bits)[None], res, table.shape[0])[0]]
            ref.append(acc)
        assert torch.allclose(got[n], torch.cat(ref), atol=1e-6)


def test_trunc_exp_caps_opaque_densities_and_their_gradient():
    x = torch.tensor([0.0, 14.0, 16.0, 100.0], requires_grad=True)
    y = fields.trunc_exp(x)
    # float32 exp differs by an ulp between vector units: relative tolerance 1e-6 (float32 eps 1.2e-7)
    assert math.isclose(y[3].item(), math.exp(15.0), rel_tol=1e-6)
    y.sum().backward()
    assert torch.allclose(x.grad[:2], torch.exp(x.detach()[:2]), rtol=1e-6)
    assert x.grad[2:].eq(0).all()


@pytest.mark.parametrize("preset", ["mlp", "triplane", "hash", "hash_l8"])
def test_a_query_of_no_points_is_empty(preset):
    # a render whose rays all miss the occupancy grid asks for no points at all
    spec = get_preset(preset)
    params = fields.init_params(spec, 2, torch.Generator().manual_seed(0))
    rgb, sigma = fields.query(spec, params, torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    assert rgb.shape == (0, 3) and sigma.shape == (0,)
    rgb, sigma = fields.query(spec, params, torch.zeros(2, 0, 3))
    assert rgb.shape == (2, 0, 3) and sigma.shape == (2, 0)
