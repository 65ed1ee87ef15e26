import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.data import Batch, Data

from nerfspace import fields
from nerfspace.archs import get_preset
from nerfspace.encoders import (
    PRESETS,
    ComposedEncoder,
    Composition,
    GMNConfig,
    gmn_fused,
    inputs,
    preset,
)
from nerfspace.encoders.compose import upgrade_legacy
from nerfspace.encoders.gmn import GMN
from nerfspace.encoders.gmn_fused import FusedGMN
from nerfspace.errors import InputError
from nerfspace.graphs import nerf_to_graph
from nerfspace.graphs.probes import probe_activations
from nerfspace.invariant import INVARIANT_WIDTH
from nerfspace.probe import N_PROBES, field_probe, nerf_field
from nerfspace.zoo.storage import NeRF

SEEN = ("mlp", "triplane", "hash")


def _nerf(preset_name, seed=0):
    spec = get_preset(preset_name)
    gen = torch.Generator().manual_seed(seed)
    params = {n: t[0] for n, t in fields.init_params(spec, 1, gen).items()}
    params = {n: t + 0.1 * torch.randn(t.shape, generator=gen) for n, t in params.items()}
    occupancy = torch.rand(16, 16, 16, generator=gen) < 0.5
    return NeRF(spec, params, occupancy)


@pytest.fixture(scope="module")
def nerfs():
    return [_nerf(p, i) for i, p in enumerate(SEEN)]


@pytest.fixture(scope="module")
def graphs(nerfs):
    return [nerf_to_graph(n.spec, n.params, n.occupancy) for n in nerfs]


def _gmn(seed=0, cls=GMN, **kw):
    torch.manual_seed(seed)
    gmn = cls(GMNConfig(**kw)).eval()
    with torch.no_grad():  # move the norms off their identity init so that their parameters matter
        for name, p in gmn.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return gmn


def _fused_copy(gmn: GMN) -> FusedGMN:
    fused = FusedGMN(gmn.config).eval()
    fused.load_state_dict(gmn.state_dict())
    return fused


@pytest.mark.parametrize(
    "options", [{}, {"probes": False, "output_readout": False}, {"output_readout": False}]
)
def test_the_fused_kernel_computes_the_message_passing_function(graphs, options):
    gmn = _gmn(hidden=32, width=96, **options)
    fused = _fused_copy(gmn)
    for g in graphs:
        plain = gmn(g)  # parameters require grad: autograd
        assert plain.requires_grad
        with torch.no_grad():
            assert torch.allclose(fused(g), plain, atol=1e-5, rtol=0)


def test_a_batch_gives_the_same_embeddings_as_one_graph_at_a_time(graphs):
    for gmn in (_gmn(), _fused_copy(_gmn())):
        with torch.inference_mode():
            one = torch.cat([gmn(g) for g in graphs])
            together = gmn(Batch.from_data_list(graphs))
        assert together.shape == (len(graphs), gmn.config.width)
        assert torch.allclose(together, one, atol=1e-5, rtol=0)
        assert torch.isfinite(together).all() and (together >= 0).all() and (together > 0).any()


def test_probe_rows_that_do_not_match_the_mlp_neurons_are_refused(graphs):
    g = graphs[1]  # triplane: MLP neurons first, then plane cells
    short = Data(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr, probe=g.probe[:-1])
    with pytest.raises(InputError, match="probe rows"):
        _gmn()(short)


def test_reused_workspace_is_safe_across_calls_modes_and_threads(graphs):
    fused = _fused_copy(_gmn())
    with torch.no_grad():
        alone = [fused(g) for g in graphs]
    with torch.inference_mode():
        first = fused(graphs[2])
    with torch.no_grad():  # a buffer first made under inference mode must still be writable here
        again = fused(graphs[2])
        fused(graphs[0])  # a later call must not overwrite an earlier call's output
    assert torch.equal(first, again) and torch.equal(again, alone[2])

    def encode(g):
        with torch.no_grad():  # grad mode is per thread
            return fused(g)

    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(encode, graphs * 3))
    assert all(torch.equal(z, alone[i % 3]) for i, z in enumerate(threaded))


def test_chunk_boundaries_and_edge_order_do_not_change_the_embedding(graphs, monkeypatch):
    fused = _fused_copy(_gmn())
    g = graphs[1]
    with torch.no_grad():
        ref = fused(g)
        monkeypatch.setattr(gmn_fused, "EDGE_CHUNK", 97)  # many chunks, a ragged last one
        chunked = fused(g)
        perm = torch.randperm(g.num_edges, generator=torch.Generator().manual_seed(0))
        shuffled = fused(
            Data(x=g.x, edge_index=g.edge_index[:, perm], edge_attr=g.edge_attr[perm], probe=g.probe)
        )
    assert torch.allclose(chunked, ref, atol=1e-5, rtol=0)
    assert torch.allclose(shuffled, ref, atol=1e-5, rtol=0)


def test_gradients_reach_every_parameter_of_a_composition(nerfs):
    torch.manual_seed(0)
    enc = ComposedEncoder(preset("small")).train()
    z = enc(inputs.collate([inputs.nerf_inputs(n, enc.composition.needs) for n in nerfs]))
    assert z.shape == (3, enc.composition.width)
    (z * torch.randn_like(z)).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bf16_precision_stays_close_to_fp32(graphs):
    # tolerance: cosine similarity >= 0.999 and max |diff| <= 2% of the largest embedding entry
    fp32 = _gmn()
    bf16 = GMN(replace(fp32.config, precision="bf16")).eval()
    bf16.load_state_dict(fp32.state_dict())
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        a, b = fp32(batch), bf16(batch)
    assert b.dtype == torch.float32 and (b >= 0).all()
    assert F.cosine_similarity(a, b, dim=1).min() >= 0.999
    assert (a - b).abs().max() <= 0.02 * a.abs().max()


@pytest.mark.parametrize("name", list(PRESETS))
def test_flop_count_matches_the_flop_counter(nerfs, name):
    comp = preset(name)
    batch = inputs.collate([inputs.nerf_inputs(n, comp.needs) for n in nerfs])
    enc = ComposedEncoder(comp)
    with FlopCounterMode(display=False) as counter:
        enc(batch)  # autograd
    assert enc.flops(batch) == counter.get_total_flops()
    if "graph" in comp.needs:  # the fused kernel projects only the nodes that receive edges
        assert ComposedEncoder(comp, fused=True).flops(batch) < counter.get_total_flops()


def test_the_field_encoder_reads_the_field_the_graph_carries(nerfs):
    # the field at the probe points, read through the field protocol, is the graph's output-neuron probe rows
    for n in nerfs:
        probe = probe_activations(n.spec, n.params, n.occupancy)
        first_out = probe.shape[0] - n.spec.out_pad
        rows = probe[first_out : first_out + 4]
        assert torch.allclose(field_probe(nerf_field(n)).T, rows, atol=1e-5, rtol=1e-4)


def test_inputs_are_built_only_for_the_parts_that_read_them(nerfs, tmp_path, monkeypatch):
    def no_graph(*args):
        raise AssertionError("a graph was built for an encoder without a graph part")

    monkeypatch.setattr(inputs, "nerf_to_graph", no_graph)
    comp = preset("field")
    assert comp.needs == ("field",)
    x = inputs.collate([inputs.nerf_inputs(n, comp.needs) for n in nerfs])
    assert x["field"].shape == (3, N_PROBES, 4)
    assert ComposedEncoder(comp)(x).shape == (3, comp.width)


def test_compositions_round_trip_and_bad_ones_are_refused():
    for comp in PRESETS.values():
        assert Composition.from_dict(comp.to_dict()) == comp
    assert preset("small").width == 256 + 256 and preset("small").needs == ("graph", "field")
    assert preset("paper").to_dict() == {
        "parts": [
            {
                "kind": "gmn",
                "hidden": 128,
                "blocks": 4,
                "width": 1024,
                "n_freqs": 8,
                "precision": "fp32",
                "probes": False,
                "output_readout": False,
            }
        ]
    }
    bad = [
        ({"parts": []}, "at least one part"),
        ({"parts": [{"kind": "field"}, {"kind": "field"}]}, "once"),
        ({"parts": [{"kind": "transformer"}]}, "unknown encoder part"),
        ({"parts": [{"kind": "gmn", "precision": "fp8"}]}, "precision"),
        ({"parts": [{"kind": "gmn", "probes": "false"}]}, "true or false"),
        ({"parts": [{"kind": "gmn", "hidden": 32.0}]}, "integer"),
        ({"parts": [{"kind": "gmn", "width": 10**9}]}, "integer"),
        ({"parts": [{"kind": "field", "depth": 3}]}, "depth"),
        ({"parts": [{"kind": "invariant", "objective": "colour"}]}, "objective"),
        ({"parts": [{"kind": "invariant", "objective": "category"}]}, "objective is object"),
        ({"hidden": 64}, "not an encoder composition"),
    ]
    for d, message in bad:
        with pytest.raises(InputError, match=message):
            Composition.from_dict(d)
    with pytest.raises(InputError, match="preset"):
        preset("huge")


def test_the_invariant_preset_has_an_object_part_and_a_category_part_of_unit_length(nerfs):
    comp = preset("invariant")
    assert comp.needs == ("invariant",) and comp.width == 512
    assert comp.slices() == {"invariant": slice(0, 256), "invariant_category": slice(256, 512)}
    assert comp.columns("object") == list(range(256)) and comp.columns("category") == list(range(256, 512))
    assert Composition.from_dict(comp.to_dict()) == comp
    torch.manual_seed(0)
    enc = ComposedEncoder(comp).eval()
    x = inputs.collate([inputs.nerf_inputs(n, comp.needs) for n in nerfs])
    assert x["invariant"].shape == (3, INVARIANT_WIDTH)
    z = enc(x)
    assert torch.allclose(z[:, :256].norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.allclose(z[:, 256:].norm(dim=1), torch.ones(3), atol=1e-5)
    assert enc.flops(x) == 2 * 2 * 3 * (INVARIANT_WIDTH * 512 + 512 * 256)


def test_a_view_turns_the_field_the_inputs_read_and_is_cached_apart(nerfs, tmp_path):
    from nerfspace.zoo.storage import save_nerf

    path = tmp_path / "a.safetensors"
    save_nerf(path, nerfs[0])
    plain = inputs.cached_inputs(path, tmp_path / "cache", ("field", "invariant"))
    turned = inputs.cached_inputs(path, tmp_path / "cache", ("field", "invariant"), view=1)
    again = inputs.cached_inputs(path, tmp_path / "cache", ("field", "invariant"), view=1)
    assert not torch.allclose(plain["field"], turned["field"], atol=1e-3)
    assert all(torch.equal(turned[k], again[k]) for k in turned)
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 4
    digest = inputs.file_hash(path)
    pose = inputs.view_pose(digest, 1)
    assert (
        float(pose.rotation[2, 2]) >= math.cos(math.radians(inputs.VIEW_TILT_DEG)) - 1e-6
    )  # a tilt <= 15 deg
    assert not torch.allclose(pose.rotation, inputs.view_pose(digest, 2).rotation)


def test_a_checkpoint_from_before_compositions_converts_to_the_same_function(nerfs):
    torch.manual_seed(0)
    enc = ComposedEncoder(preset("small")).eval()
    # the same weights as one GMN with a field readout wrote them: no part prefix, the field MLP as field_in
    legacy = {}
    for k, v in enc.state_dict().items():
        k = k.replace("parts.field.mlp.", "field_in.").replace("parts.gmn.", "")
        legacy["encoder." + k] = v
    legacy["decoder.w"] = torch.zeros(1)
    config = {"hidden": 64, "blocks": 4, "embed_dim": 512, "n_freqs": 8, "precision": "fp32"}
    config |= {"probes": True, "output_readout": True, "field_readout": True}
    new_config, state = upgrade_legacy(config, legacy)
    assert Composition.from_dict(new_config) == preset("small")
    assert state.keys() == {"encoder." + k for k in enc.state_dict()} | {"decoder.w"}
    assert all(torch.equal(state["encoder." + k], v) for k, v in enc.state_dict().items())
    paper = {k: v for k, v in preset("paper").parts[0].__dict__.items()} | {"embed_dim": 1024}
    assert Composition.from_dict(upgrade_legacy(paper, {})[0]) == preset("paper")
