from dataclasses import replace

import pytest
import torch

from nerfspace.errors import InputError
from nerfspace.evaluation.baselines import raw_weights_knn, render_then_classify
from nerfspace.zoo import ZooConfig, build_zoo
from nerfspace.zoo.items import zoo_items


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    from tests.conftest import TINY_FIT

    out = tmp_path_factory.mktemp("zoo")
    cfg = ZooConfig(classes=("chair", "car"), objects_per_class=3, archs=("mlp", "mlp_2l"), fit="distill")
    build_zoo(out, cfg, fit_cfg=replace(TINY_FIT, mode="distill"))
    return zoo_items(out)


def test_render_then_classify(items):
    calls = []
    rng = torch.get_rng_state()
    kwargs = dict(seed=3, views=2, size=16, epochs=3)
    result = render_then_classify(items, progress=lambda done, total: calls.append((done, total)), **kwargs)
    assert torch.equal(rng, torch.get_rng_state())  # the global generator is left alone
    assert calls[-1] == (8, 8) and len(calls) == 8  # 2 train + 2 test objects, 2 presets each
    assert (result["train_nerfs"], result["test_nerfs"]) == (4, 4)
    assert (result["views"], result["size"], result["epochs"]) == (2, 16, 3)
    acc = result["accuracy"]
    assert set(acc["per_arch"]) == {"mlp", "mlp_2l"}
    for a in (acc["seen"], acc["unseen"], *acc["per_arch"].values()):
        assert 0.0 <= a <= 1.0
    t = result["seconds_per_nerf"]
    assert t["render"] > 0 and t["classify"] > 0
    assert t["total"] == pytest.approx(t["render"] + t["classify"])

    assert render_then_classify(items, **kwargs)["accuracy"] == acc  # deterministic for a seed
    seen_only = [it for it in items if it.preset == "mlp"]
    assert render_then_classify(seen_only, **{**kwargs, "epochs": 1})["accuracy"]["unseen"] is None
    with pytest.raises(InputError, match="train and the test"):
        render_then_classify([it for it in items if it.split != "test"])


def test_raw_weights_knn(items):
    result = raw_weights_knn(items, components=4, k=3)
    assert (result["components"], result["k"]) == (4, 3)
    assert set(result["per_arch"]) == {"mlp", "mlp_2l"}
    assert all(0.0 <= a <= 1.0 for a in result["per_arch"].values())
    assert raw_weights_knn(items, components=4, k=3) == result  # deterministic

    # a preset without test NeRFs or with a single train NeRF is left out
    no_test = [it for it in items if not (it.preset == "mlp_2l" and it.split == "test")]
    assert set(raw_weights_knn(no_test)["per_arch"]) == {"mlp"}
    lone = next(it for it in items if it.preset == "mlp_2l" and it.split == "train")
    assert set(raw_weights_knn([it for it in items if it is not lone])["per_arch"]) == {"mlp"}
