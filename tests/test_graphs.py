import pytest
import torch

from nerfspace import fields
from nerfspace.archs import PRESETS, get_preset
from nerfspace.encoders.gmn import GMN, GMNConfig
from nerfspace.errors import InputError
from nerfspace.graphs import graph_size, graph_to_params, nerf_to_graph
from nerfspace.graphs.schema import EDGE_FEATURES, HASH_VALUE, PLANE_VALUE


def _params(spec, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = {n: t[0] for n, t in fields.init_params(spec, 1, gen).items()}
    if spec.family == "triplane":
        out["triplane"] = torch.randn(out["triplane"].shape, generator=gen)
    if spec.family == "hash":
        out = {n: torch.randn(t.shape, generator=gen) if n.startswith("hash.") else t for n, t in out.items()}
    return out


@pytest.mark.parametrize(
    "preset,nodes,edges",
    [("mlp", 352, 18_432), ("triplane", 3_584, 77_824), ("hash", 16_608, 43_008)],
)
def test_paper_scale_graph_sizes(preset, nodes, edges):
    # hash: 16,384 table entries + 224 neurons; the released code's 16 isolated duplicates are not made
    spec = get_preset(preset, "paper")
    g = nerf_to_graph(spec, _params(spec), None)
    assert (g.num_nodes, g.num_edges) == (nodes, edges) == graph_size(spec)


@pytest.mark.parametrize("preset", PRESETS)
def test_round_trip_returns_identical_weights_and_no_node_is_isolated(preset):
    spec = get_preset(preset)
    params = _params(spec, 3)
    g = nerf_to_graph(spec, params, None)
    back = graph_to_params(spec, g)
    assert back.keys() == params.keys()
    assert all(torch.equal(back[n], params[n]) for n in params)
    touched = torch.zeros(g.num_nodes, dtype=torch.bool)
    touched[g.edge_index.flatten()] = True
    assert touched.all()


def test_round_trip_with_biases():
    spec = get_preset("mlp").__class__(**{**get_preset("mlp").to_dict(), "bias": True})
    params = _params(spec)
    params = {n: torch.randn(t.shape) if n.endswith(".bias") else t for n, t in params.items()}
    back = graph_to_params(spec, nerf_to_graph(spec, params, None))
    assert all(torch.equal(back[n], params[n]) for n in params)


def test_triplane_edges_carry_the_true_cell_position():
    spec = get_preset("triplane")
    params = _params(spec)
    g = nerf_to_graph(spec, params, None)
    res, nf = spec.plane_res, spec.plane_features
    plane, i, j, f = 2, 3, res - 1, 1  # plane 2 spans (y, z)
    row = ((plane * res + i) * res + j) * nf + f
    attr = g.edge_attr[row]
    assert attr[EDGE_FEATURES.index("type")] == PLANE_VALUE
    assert attr[0] == params["triplane"][plane, i, j, f]
    assert torch.allclose(attr[3:], torch.tensor([-1.0, i / (res - 1), 1.0]))
    assert g.edge_index[1, row] == f  # into feature node f


def test_hash_edges_feed_their_level_features():
    spec = get_preset("hash")
    g = nerf_to_graph(spec, _params(spec), None)
    hashed = g.edge_attr[:, EDGE_FEATURES.index("type")] == HASH_VALUE
    assert hashed.sum() == sum(spec.hash_table_sizes) * spec.hash_features
    assert set(g.edge_index[1, hashed].tolist()) == set(range(spec.spatial_dim))


def _permute_hidden(spec, params, gen):
    out = dict(params)
    for i in range(spec.hidden_layers):
        perm = torch.randperm(spec.width, generator=gen)
        out[f"mlp.{i}.weight"] = out[f"mlp.{i}.weight"][perm]
        out[f"mlp.{i + 1}.weight"] = out[f"mlp.{i + 1}.weight"][:, perm]
    return out


@pytest.mark.parametrize("preset", ["mlp", "triplane", "hash"])
def test_permuting_hidden_neurons_leaves_the_embedding_unchanged(preset):
    torch.manual_seed(0)
    spec = get_preset(preset)
    params = _params(spec)
    permuted = _permute_hidden(spec, params, torch.Generator().manual_seed(1))
    assert not torch.equal(permuted["mlp.1.weight"], params["mlp.1.weight"])
    enc = GMN(GMNConfig()).eval()
    with torch.no_grad():
        a, b = enc(nerf_to_graph(spec, params, None)), enc(nerf_to_graph(spec, permuted, None))
    assert torch.allclose(a, b, atol=1e-5)
    # and the encoder does see the weights: a different hidden layer changes the embedding
    params["mlp.1.weight"] = params["mlp.1.weight"] * 2
    with torch.no_grad():
        assert not torch.allclose(a, enc(nerf_to_graph(spec, params, None)), atol=1e-5)


def test_bad_weights_are_refused():
    spec = get_preset("mlp")
    params = _params(spec)
    params["mlp.0.weight"][0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        nerf_to_graph(spec, params, None)
    params = _params(spec)
    params["mlp.0.weight"] = params["mlp.0.weight"][:, :-1]
    with pytest.raises(InputError, match="mlp.0.weight"):
        nerf_to_graph(spec, params, None)


@pytest.mark.parametrize("preset", ["mlp", "triplane", "hash"])
def test_output_probes_are_the_field_at_the_probe_points(preset):
    from nerfspace.graphs import mlp_nodes
    from nerfspace.probe import PROBE_POINTS

    spec = get_preset(preset)
    params = _params(spec)
    g = nerf_to_graph(spec, params, None)
    rgb, sigma = fields.query(spec, {n: t[None] for n, t in params.items()}, PROBE_POINTS[None])
    out = g.probe[mlp_nodes(spec) - spec.out_pad :]
    assert torch.allclose(out[:3].T, rgb[0], atol=1e-6)
    assert torch.allclose(out[3], sigma[0] / (1 + sigma[0]), atol=1e-6)
    assert g.probe.shape[0] == mlp_nodes(spec)  # spatial nodes carry no probe


def test_probes_read_zero_where_the_occupancy_grid_is_empty():
    from nerfspace.probe import PROBE_POINTS
    from nerfspace.render import cell_centers

    spec = get_preset("mlp")
    params = _params(spec)
    res = 8
    occupancy = (cell_centers(res)[:, 0] > 0).reshape(res, res, res)  # the half-space x > 0
    free = nerf_to_graph(spec, params, None).probe
    masked = nerf_to_graph(spec, params, occupancy).probe
    kept = PROBE_POINTS[:, 0] > 0
    assert torch.equal(masked[:, kept], free[:, kept])
    assert masked[:, ~kept].abs().max() == 0 < free[:, ~kept].abs().max()
    full = nerf_to_graph(spec, params, torch.ones(res, res, res, dtype=torch.bool)).probe
    assert torch.equal(full, free)
    with pytest.raises(InputError, match="occupancy grid has shape"):
        nerf_to_graph(spec, params, torch.ones(res, res, dtype=torch.bool))
