"""Captures: bad options refused, drawn captures deterministic and inside the box, posed objects exact,
independent zoos that store each NeRF's capture."""

from __future__ import annotations

import json
import math

import pytest
import torch

from nerfspace.errors import InputError
from nerfspace.frames import Similarity, box_corners, uniform_rotation, yaw_tilt_rotation
from nerfspace.shapes import CATEGORIES, make_object
from nerfspace.zoo import ZooConfig, build_zoo, load_nerf
from nerfspace.zoo.captures import BOX_LIMIT, CaptureConfig, draw_capture


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "weird"},
        {"mode": "independent", "rotation": "xyz"},
        {"mode": "independent", "tilt_deg": 181.0},
        {"mode": "independent", "tilt_deg": -1.0},
        {"mode": "independent", "tilt_deg": math.nan},
        {"mode": "independent", "scale": (0.0, 1.0)},
        {"mode": "independent", "scale": (0.9, 0.8)},
        {"mode": "independent", "scale": (0.8, 1.3)},  # out of the box even unrotated
        {"mode": "independent", "shift": 0.3},
        {"mode": "independent", "shift": -0.1},
        {"mode": "independent", "views": (2, 3)},
        {"mode": "aligned", "tilt_deg": 30.0},  # an option that aligned captures would ignore
    ],
)
def test_bad_capture_options_are_refused(options):
    with pytest.raises(InputError):
        CaptureConfig(**options)


def test_similarity_inverts_and_composes():
    gen = torch.Generator().manual_seed(0)
    a = Similarity(uniform_rotation(gen), torch.tensor([0.1, -0.2, 0.05]), 0.8)
    b = Similarity(yaw_tilt_rotation(1.0, 0.2, 2.0), torch.tensor([0.0, 0.03, -0.1]), 1.1)
    x = torch.randn(50, 3, generator=gen)
    assert torch.allclose(a.inverse(a.apply(x)), x, atol=1e-5)
    assert torch.allclose(a.then(b).apply(x), b.apply(a.apply(x)), atol=1e-5)
    assert torch.allclose(a.inverted().apply(a.apply(x)), x, atol=1e-5)
    r = a.rotation
    assert torch.allclose(r @ r.T, torch.eye(3), atol=1e-5) and torch.det(r) == pytest.approx(1.0, abs=1e-5)
    assert Similarity.from_dict(json.loads(json.dumps(a.to_dict()))).to_dict() == a.to_dict()


@pytest.mark.parametrize("rotation", ["yaw", "so3"])
def test_drawn_captures_are_deterministic_and_stay_in_the_box(rotation):
    cfg = CaptureConfig("independent", rotation)
    yaws = []
    for i, category in enumerate(CATEGORIES):
        obj = make_object(category, i)
        for seed in range(6):
            cap = draw_capture(cfg, 100 * i + seed, obj, 16, 2)
            again = draw_capture(cfg, 100 * i + seed, obj, 16, 2)
            assert cap.to_dict() == again.to_dict()
            posed = obj.posed(cap.pose, cap.light)
            assert posed.bounds.abs().max() <= BOX_LIMIT + 1e-5  # never clipped by the box
            assert (
                cap.pose.scale <= cfg.scale[1] + 1e-6 and cap.pose.translation.abs().max() <= cfg.shift + 1e-6
            )
            assert cfg.views[0] <= len(cap.train) <= cfg.views[1] and len(cap.test) == 2
            r = cap.pose.rotation
            if rotation == "yaw":  # the up axis tilts by at most the configured tilt
                assert math.degrees(math.acos(min(1.0, float(r[2, 2])))) <= cfg.tilt_deg + 1e-3
            yaws.append(math.atan2(float(r[1, 0]), float(r[0, 0])))
    # yaw spread over the whole circle: every quadrant is drawn
    assert {int((y + math.pi) // (math.pi / 2)) % 4 for y in yaws} == {0, 1, 2, 3}


def test_a_posed_object_is_the_object_moved():
    obj = make_object("chair", 2)
    pose = Similarity(yaw_tilt_rotation(2.0, 0.1, 0.5), torch.tensor([0.05, -0.02, 0.03]), 0.85)
    light = torch.tensor([0.0, 0.0, 1.0])
    posed = obj.posed(pose, light)
    x = (torch.rand(400, 3, generator=torch.Generator().manual_seed(1)) - 0.5) * 1.2
    assert torch.allclose(posed.sdf(pose.apply(x)), 0.85 * obj.sdf(x), atol=1e-5)
    assert torch.allclose(posed.albedo(pose.apply(x)), obj.albedo(x), atol=1e-5)
    moved = pose.apply(box_corners(obj.bounds))
    assert torch.allclose(posed.bounds[0], moved.amin(0)) and torch.allclose(posed.bounds[1], moved.amax(0))
    assert torch.equal(posed.light, light) and torch.equal(posed.posed(pose).light, light)


def test_an_independent_zoo_stores_a_capture_per_nerf(tmp_path, tiny_fit):
    cfg = ZooConfig(
        classes=("car",),
        objects_per_class=1,
        archs=("mlp", "triplane"),
        captures=CaptureConfig("independent"),
    )
    manifest = build_zoo(tmp_path / "zoo", cfg, fit_cfg=tiny_fit)
    assert manifest["config"]["captures"]["mode"] == "independent"
    caps = [json.loads(load_nerf(tmp_path / "zoo" / n["file"]).meta["capture"]) for n in manifest["nerfs"]]
    assert len(caps) == 2 and caps[0] != caps[1]  # one object, two captures of its own
    for cap in caps:
        assert set(cap) == {"rotation", "translation", "scale", "light", "views"}
    aligned = build_zoo(
        tmp_path / "aligned",
        ZooConfig(classes=("car",), objects_per_class=1, archs=("mlp",)),
        fit_cfg=tiny_fit,
    )
    assert "captures" not in aligned["config"]
    assert "capture" not in load_nerf(tmp_path / "aligned" / aligned["nerfs"][0]["file"]).meta


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--captures", "weird"], "unknown captures"),
        (["--captures", "independent", "--capture-tilt", "200"], "tilt"),
        (["--captures", "independent", "--capture-scale", "0,1"], "scale"),
        (["--captures", "independent", "--capture-scale", "0.8,1.3"], "out of the scene box"),
        (["--captures", "independent", "--capture-shift", "0.3"], "out of the scene box"),
        (["--captures", "independent", "--capture-scale", "big"], "--capture-scale"),
        (["--capture-tilt", "30"], "--capture-tilt"),
    ],
)
def test_bad_capture_options_at_the_cli(tmp_path, capsys, args, needle):
    from nerfspace.cli import main

    code = main(["zoo", "build", str(tmp_path / "zoo"), "--classes", "car", "-n", "1", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1 and needle in err
    assert not (tmp_path / "zoo").exists()
