from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter

from nerfspace import encoder as encoder_module
from nerfspace import fields
from nerfspace.archs import get_preset
from nerfspace.encoder import ENCODER_PRESETS, EncoderConfig, GMNEncoder, encoder_config, forward_flops
from nerfspace.errors import InputError
from nerfspace.graphs import nerf_to_graph
from nerfspace.graphs.schema import EDGE_FEATURES, NODE_FEATURES, OUTPUT

SEEN = ("mlp", "triplane", "hash")


def _graph(preset, seed=0):
    spec = get_preset(preset)
    gen = torch.Generator().manual_seed(seed)
    params = {n: t[0] for n, t in fields.init_params(spec, 1, gen).items()}
    params = {n: t + 0.1 * torch.randn(t.shape, generator=gen) for n, t in params.items()}
    return nerf_to_graph(spec, params, None)


@pytest.fixture(scope="module")
def graphs():
    return [_graph(p, i) for i, p in enumerate(SEEN)]


def _encoder(seed=0, **kw):
    torch.manual_seed(seed)
    enc = GMNEncoder(EncoderConfig(**kw)).eval()
    with torch.no_grad():  # move the norms off their identity init so that their parameters matter
        for name, p in enc.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    return enc


def _textbook(enc: GMNEncoder, g: Data) -> torch.Tensor:
    """The GMN without the exact rewrites: edge MLP on concat[h_src, h_dst, e], readout MLP on every edge
    (plus the probe, output-neuron and field options)."""
    t_n, t_e = NODE_FEATURES.index("type"), EDGE_FEATURES.index("type")
    x, e, (src, dst) = g.x, g.edge_attr, g.edge_index
    h = enc.node_in(enc.sin(torch.cat([x[:, :t_n], x[:, t_n + 1 :]], 1))) + enc.node_type(x[:, t_n].long())
    he = enc.edge_in(enc.sin(torch.cat([e[:, :t_e], e[:, t_e + 1 :]], 1))) + enc.edge_type(e[:, t_e].long())
    if enc.config.probes:
        h = h.index_add(0, torch.arange(g.probe.shape[0]), enc.probe_in(g.probe))  # MLP nodes come first
    for b in enc.blocks:
        xn = b.norm_n(h)
        w = torch.cat([b.src.weight, b.dst.weight, b.edge_in.weight], 1)
        pre = F.linear(torch.cat([xn[src], xn[dst], b.norm_e(he)], 1), w, b.edge_in.bias)
        he = he + b.edge_out(F.silu(pre))
        if b.node is not None:
            n = h.shape[0]
            agg = torch.cat([scatter(he, dst, 0, n, "mean"), scatter(he, src, 0, n, "mean")], 1)
            h = h + b.node(torch.cat([xn, b.norm_agg(agg)], 1))
    r = F.silu(enc.readout_hidden(enc.readout_norm(he)))
    hd = enc.config.hidden
    per_edge = F.linear(r, enc.readout_out.weight[:, :hd], enc.readout_out.bias)
    out = per_edge.mean(0, keepdim=True)
    if enc.config.output_readout:
        t_o = NODE_FEATURES.index("order")
        rows = ((x[:, t_n] == OUTPUT) & (x[:, t_o] < 4)).nonzero().squeeze(1)
        out = out + F.linear(enc.output_norm(h[rows]).reshape(1, -1), enc.readout_out.weight[:, hd : 5 * hd])
    out = F.relu(out)
    if enc.config.field_readout:  # probe rows are the MLP nodes' rows; the field part is not mixed
        out = torch.cat([out, enc.field_in(g.probe[rows]).reshape(1, -1)], 1)
    return out


@pytest.mark.parametrize("preset,field", [("small", False), ("small", True), ("paper", False)])
def test_fused_inference_path_and_autograd_path_compute_the_textbook_function(graphs, preset, field):
    cfg = {**encoder_config(preset).to_dict(), "hidden": 32, "embed_dim": 192, "field_readout": field}
    enc = _encoder(**cfg)
    for g in graphs:
        with torch.no_grad():
            ref = _textbook(enc, g)
            fused = enc(g)
        plain = enc(g)  # parameters require grad: the autograd path
        assert plain.requires_grad
        assert torch.allclose(fused, ref, atol=1e-5, rtol=0)
        assert torch.allclose(plain, ref, atol=1e-5, rtol=0)


def test_a_batch_gives_the_same_embeddings_as_one_graph_at_a_time(graphs):
    enc = _encoder()
    with torch.inference_mode():
        one = torch.cat([enc(g) for g in graphs])
        together = enc(Batch.from_data_list(graphs))
        as_list = enc(list(graphs))
    assert together.shape == (len(graphs), enc.config.embed_dim)
    assert torch.allclose(together, one, atol=1e-5, rtol=0)
    assert torch.equal(together, as_list)
    assert torch.isfinite(together).all() and (together >= 0).all() and (together > 0).any()


def test_probe_rows_that_do_not_match_the_mlp_neurons_are_refused(graphs):
    g = graphs[1]  # triplane: MLP neurons first, then plane cells
    short = Data(x=g.x, edge_index=g.edge_index, edge_attr=g.edge_attr, probe=g.probe[:-1])
    with pytest.raises(InputError, match="probe rows"):
        _encoder()(short)


def test_reused_workspace_is_safe_across_calls_modes_and_threads(graphs):
    enc = _encoder()
    with torch.no_grad():
        alone = [enc(g) for g in graphs]
    with torch.inference_mode():
        first = enc(graphs[2])
    with torch.no_grad():  # a buffer first made under inference mode must still be writable here
        again = enc(graphs[2])
        enc(graphs[0])  # a later call must not overwrite an earlier call's output
    assert torch.equal(first, again) and torch.equal(again, alone[2])

    def encode(g):
        with torch.no_grad():  # grad mode is per thread
            return enc(g)

    with ThreadPoolExecutor(2) as pool:
        threaded = list(pool.map(encode, graphs * 3))
    assert all(torch.equal(z, alone[i % 3]) for i, z in enumerate(threaded))


def test_chunk_boundaries_and_edge_order_do_not_change_the_embedding(graphs, monkeypatch):
    enc = _encoder()
    g = graphs[1]
    with torch.no_grad():
        ref = enc(g)
        monkeypatch.setattr(encoder_module, "EDGE_CHUNK", 97)  # many chunks, a ragged last one
        chunked = enc(g)
        perm = torch.randperm(g.num_edges, generator=torch.Generator().manual_seed(0))
        shuffled = enc(
            Data(x=g.x, edge_index=g.edge_index[:, perm], edge_attr=g.edge_attr[perm], probe=g.probe)
        )
    assert torch.allclose(chunked, ref, atol=1e-5, rtol=0)
    assert torch.allclose(shuffled, ref, atol=1e-5, rtol=0)


def test_gradients_reach_every_parameter(graphs):
    enc = _encoder(embed_dim=320, field_readout=True).train()
    z = enc(Batch.from_data_list(graphs))
    (z * torch.randn_like(z)).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_bf16_precision_stays_close_to_fp32(graphs):
    # tolerance: cosine similarity >= 0.999 and max |diff| <= 2% of the largest embedding entry
    fp32 = _encoder()
    bf16 = GMNEncoder(EncoderConfig(precision="bf16")).eval()
    bf16.load_state_dict(fp32.state_dict())
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        a, b = fp32(batch), bf16(batch)
    assert b.dtype == torch.float32 and (b >= 0).all()
    assert F.cosine_similarity(a, b, dim=1).min() >= 0.999
    assert (a - b).abs().max() <= 0.02 * a.abs().max()


@pytest.mark.parametrize("field", [False, True])
def test_flop_count_matches_the_flop_counter(graphs, field):
    enc = _encoder(embed_dim=320, field_readout=field)
    batch = Batch.from_data_list(graphs)
    with FlopCounterMode(display=False) as counter:
        enc(batch)  # autograd path
    assert forward_flops(enc.config, batch, fused=False) == counter.get_total_flops()
    assert forward_flops(enc.config, batch) < counter.get_total_flops()  # fewer target projections


def test_config_round_trips_and_bad_options_are_refused():
    for cfg in [*ENCODER_PRESETS.values(), EncoderConfig(hidden=32, precision="bf16")]:
        assert EncoderConfig(**cfg.to_dict()) == cfg
    assert encoder_config("paper").to_dict() == {
        "hidden": 128,
        "blocks": 4,
        "embed_dim": 1024,
        "n_freqs": 8,
        "precision": "fp32",
        "probes": False,
        "output_readout": False,
        "field_readout": False,
    }
    old = {k: v for k, v in encoder_config("paper").to_dict().items() if k != "field_readout"}
    assert EncoderConfig(**old) == encoder_config("paper")  # a config stored before the option existed
    with pytest.raises(InputError, match="precision"):
        EncoderConfig(precision="fp8")
    with pytest.raises(InputError, match="field_readout needs"):
        EncoderConfig(probes=False, field_readout=True)
    with pytest.raises(InputError, match="embed_dim must exceed"):
        EncoderConfig(hidden=32, embed_dim=128, field_readout=True)
    with pytest.raises(InputError, match="preset"):
        encoder_config("huge")
