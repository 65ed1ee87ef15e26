"""Property tests: any valid ArchSpec of the three families goes field → graph → embedding, and a NeRF
file with random bytes changed either fails with an `InputError` or loads exactly the original tensors."""

import tempfile
from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nerfspace import fields
from nerfspace.archs import ArchSpec
from nerfspace.encoders.gmn import GMN, GMNConfig
from nerfspace.errors import InputError
from nerfspace.graphs import graph_size, graph_to_params, nerf_to_graph
from nerfspace.zoo import NeRF, load_nerf, save_nerf

FAST = settings(max_examples=20, deadline=None, database=None)  # no example folder in the repo

torch.manual_seed(0)
ENCODER = GMN(GMNConfig(hidden=16, blocks=1, width=8, n_freqs=2)).eval()


@st.composite
def specs(draw) -> ArchSpec:
    """Small valid specs of every family."""
    family = draw(st.sampled_from(("mlp", "triplane", "hash")))
    kw = {
        "family": family,
        "n_freqs": draw(st.integers(1 if family == "mlp" else 0, 3)),
        "hidden_layers": draw(st.integers(1, 3)),
        "width": draw(st.integers(1, 12)),
        "activation": draw(st.sampled_from(("relu", "sine"))),
        "bias": draw(st.booleans()),
        "in_multiple": draw(st.sampled_from((1, 4, 16))),
        "out_pad": draw(st.integers(4, 16)),
    }
    if family == "triplane":
        kw |= {"plane_res": draw(st.integers(2, 6)), "plane_features": draw(st.integers(1, 4))}
    if family == "hash":
        base = draw(st.integers(2, 4))
        kw |= {
            "hash_levels": draw(st.integers(1, 3)),
            "hash_features": draw(st.integers(1, 2)),
            "hash_log2_size": draw(st.integers(3, 8)),
            "hash_base_res": base,
            "hash_max_res": draw(st.integers(base, 10)),
        }
    return ArchSpec(**kw)


@FAST
@given(spec=specs(), seed=st.integers(0, 2**16))
def test_any_spec_goes_field_graph_embedding(spec, seed):
    gen = torch.Generator().manual_seed(seed)
    batched = fields.init_params(spec, 1, gen)
    assert {n: tuple(t.shape[1:]) for n, t in batched.items()} == spec.param_shapes()
    rgb, sigma = fields.query(spec, batched, torch.rand(1, 5, 3, generator=gen) * 1.4 - 0.7)
    assert rgb.shape == (1, 5, 3) and sigma.shape == (1, 5)
    assert torch.isfinite(rgb).all() and ((rgb >= 0) & (rgb <= 1)).all() and (sigma >= 0).all()

    params = {n: t[0] for n, t in batched.items()}
    graph = nerf_to_graph(spec, params, None)
    assert (graph.num_nodes, graph.num_edges) == graph_size(spec)
    back = graph_to_params(spec, graph)
    assert back.keys() == params.keys() and all(torch.equal(back[n], params[n]) for n in params)
    with torch.no_grad():
        z = ENCODER(graph)
    assert z.shape == (1, 8) and torch.isfinite(z).all()


def _small_nerf_file() -> tuple[bytes, NeRF]:
    spec = ArchSpec("hash", n_freqs=1, hash_levels=2, hash_log2_size=4, hash_features=2, hash_base_res=2,
                    hash_max_res=4, hidden_layers=1, width=4)  # fmt: skip
    params = {n: t[0] for n, t in fields.init_params(spec, 1, torch.Generator().manual_seed(1)).items()}
    nerf = NeRF(
        spec, params, torch.rand(4, 4, 4, generator=torch.Generator().manual_seed(2)) > 0.5, {"psnr": "1"}
    )
    with tempfile.TemporaryDirectory() as d:
        save_nerf(Path(d) / "n.safetensors", nerf)
        return (Path(d) / "n.safetensors").read_bytes(), nerf


ORIGINAL, NERF = _small_nerf_file()


@st.composite
def corruptions(draw) -> bytes:
    """The NeRF file with 1-4 bytes changed, or cut short, or both."""
    data = bytearray(ORIGINAL)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255).filter(lambda b, i=i: b != data[i]))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data) - 1))]
    return bytes(data)


@settings(max_examples=25, deadline=None, database=None)
@given(data=corruptions())
def test_a_corrupted_nerf_file_fails_clearly_or_loads_the_same_tensors(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "n.safetensors"
        path.write_bytes(data)
        try:
            nerf = load_nerf(path)
        except InputError as e:
            assert str(path) in str(e)
            return
    assert nerf.spec == NERF.spec and torch.equal(nerf.occupancy, NERF.occupancy)
    assert nerf.params.keys() == NERF.params.keys()
    assert all(torch.equal(nerf.params[n], NERF.params[n]) for n in NERF.params)
