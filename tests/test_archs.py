import json

import pytest

from nerfspace.archs import (
    PRESETS,
    SCALES,
    SEEN,
    UNSEEN,
    ArchSpec,
    SpecError,
    get_preset,
    preset_name,
    resolve_archs,
)


def test_thirteen_presets_at_both_scales():
    assert len(PRESETS) == 13 and len(SEEN) == 3 and len(UNSEEN) == 10
    for scale in SCALES:
        specs = [get_preset(p, scale) for p in PRESETS]
        assert len(set(specs)) == 13  # all distinct


@pytest.mark.parametrize("name,count", [("mlp", 18_432), ("triplane", 77_824), ("hash", 43_008)])
def test_paper_parameter_counts(name, count):
    assert get_preset(name, "paper").n_params == count


def test_paper_shapes():
    t = get_preset("triplane", "paper")
    assert t.param_shapes()["triplane"] == (3, 32, 32, 16)
    assert t.mlp_in == 304 and t.layer_shapes[-1] == (16, 64)
    assert get_preset("mlp", "paper").mlp_in == 144
    h = get_preset("hash", "paper")
    assert h.mlp_in == 16 and h.spatial_dim == 8  # 8 features padded to 16


def test_small_presets_fit_the_edge_budget():
    for p in PRESETS:
        assert get_preset(p, "small").n_params <= 8_000, p


def test_unseen_variants_keep_their_relations():
    for scale in SCALES:
        g = lambda n, s=scale: get_preset(n, s)  # noqa: E731
        assert g("mlp_2l").hidden_layers < g("mlp").hidden_layers < g("mlp_4l").hidden_layers
        assert g("mlp_w32").width < g("mlp").width < g("mlp_w128").width
        assert g("triplane_r16").plane_res < g("triplane").plane_res
        assert g("triplane_f8").plane_features < g("triplane").plane_features
        assert g("triplane_relu").activation == "relu" != g("triplane").activation
        assert g("hash_t11").hash_log2_size < g("hash").hash_log2_size < g("hash_t13").hash_log2_size
        assert g("hash_l8").hash_levels > g("hash").hash_levels


def test_hash_table_sizes_per_level():
    # coarse levels hold min(res^3, 2^log2T) entries
    assert get_preset("hash", "paper").hash_resolutions == [16, 32, 64, 128]
    assert get_preset("hash", "paper").hash_table_sizes == [4096] * 4
    assert get_preset("hash_t13", "paper").hash_table_sizes == [4096, 8192, 8192, 8192]
    assert get_preset("hash_t11", "paper").hash_table_sizes == [2048] * 4
    odd = ArchSpec(
        "hash", hash_levels=2, hash_log2_size=10, hash_features=2, hash_base_res=5, hash_max_res=20
    )
    assert odd.hash_resolutions == [5, 20]
    assert odd.hash_table_sizes == [128, 1024]  # 5^3 = 125 rounded up to a multiple of 8


def test_json_round_trip_and_registry_lookup():
    for p in PRESETS:
        s = get_preset(p)
        assert ArchSpec.from_json(s.to_json()) == s
        assert preset_name(s) == (p, "small")
    assert json.loads(get_preset("hash").to_json())["family"] == "hash"


@pytest.mark.parametrize(
    "bad",
    [
        '{"family": "voxels"}',
        '{"family": "mlp", "n_freqs": 4, "activation": "tanh"}',
        '{"family": "mlp"}',
        '{"family": "mlp", "n_freqs": 4, "depth": 3}',
        "not json",
        "[1, 2]",
    ],
)
def test_bad_specs_are_rejected(bad):
    with pytest.raises(SpecError):
        ArchSpec.from_json(bad)


def test_resolve_archs():
    assert resolve_archs("seen") == list(SEEN)
    assert resolve_archs("all") == list(PRESETS)
    assert resolve_archs("mlp,hash_l8") == ["mlp", "hash_l8"]
    with pytest.raises(SpecError, match="unknown architecture"):
        resolve_archs("mlp,resnet")
    with pytest.raises(SpecError, match="unknown architecture"):
        get_preset("resnet")
