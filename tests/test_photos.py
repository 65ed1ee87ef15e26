import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import one_error_line
from nerfspace.cli import main
from nerfspace.render import camera_rays, orbit_cameras
from nerfspace.shapes import make_object, sphere_trace
from nerfspace.shapes.photos import read_photos, write_scene
from nerfspace.zoo import load_nerf

SCALE, OFFSET = 3.0, np.array([1.0, -2.0, 0.5])  # the scene's world frame: the canonical one scaled, shifted


def make_scene(folder, frames=8, size=48):
    """A NeRF-synthetic scene (RGBA frames, camera_angle_x) of a chair, in a world frame of its own."""
    cams = orbit_cameras(frames, size, radius=2.2)
    rgb, alpha = sphere_trace(make_object("chair", 0), *camera_rays(cams))
    write_scene(folder, torch.cat([rgb, alpha[..., None]], -1), cams, (SCALE, OFFSET))
    return json.loads((folder / "transforms.json").read_text())


def test_the_frame_is_found_from_the_cameras_and_the_hull(tmp_path):
    make_scene(tmp_path / "s")
    photos, frame = read_photos(tmp_path / "s")
    assert np.allclose(frame.center[:2], OFFSET[:2], atol=0.15)  # the object's centre, in world units
    # the chair's longest side is 1.07 canonical units: 3.2 world units, normalised to 1.0 (hull: a bit more)
    assert 1 / (SCALE * 1.066) * 0.8 < frame.scale < 1 / (SCALE * 1.066) * 1.05
    assert photos.test == (7,) and photos.images.shape == (8, 48, 48, 3)
    train, test = photos.cameras(24)
    assert len(train) == 7 and len(test) == 1 and train.focal == pytest.approx(photos.focal / 2)
    assert torch.allclose(
        photos.render(test)[0],
        torch.nn.functional.avg_pool2d(photos.images[7].permute(2, 0, 1), 2).permute(1, 2, 0),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    "damage, needle",
    [
        ("missing", "is missing"),
        ("garbage", "not a readable image"),
        ("mixed", "mixed sizes"),
        ("nan", "not a finite 4x4"),
        ("singular", "not a rotation"),
        ("outside", "outside the scene folder"),
        ("few", "needs at least 4"),
        ("json", "not a readable transforms file"),
        ("focal", "different focal lengths"),
        ("off-centre", "off the image centre"),
    ],
)
def test_bad_scenes_fail_with_one_line_and_write_nothing(capsys, tmp_path, damage, needle):
    scene = tmp_path / "s"
    doc = make_scene(scene)
    frames = doc["frames"]
    if damage == "missing":
        (scene / "r_3.png").unlink()
    elif damage == "garbage":
        (scene / "r_3.png").write_bytes(b"\x89PNG garbage")
    elif damage == "mixed":
        Image.new("RGBA", (30, 30)).save(scene / "r_3.png")
    elif damage == "nan":
        frames[2]["transform_matrix"][0][3] = float("nan")
    elif damage == "singular":
        frames[2]["transform_matrix"][0][:3] = [0, 0, 0]
    elif damage == "outside":
        frames[2]["file_path"] = "../elsewhere"
    elif damage == "few":
        doc["frames"] = frames[:3]
    elif damage in ("focal", "off-centre"):
        del doc["camera_angle_x"]
        for i, f in enumerate(frames):
            f["fl_x"] = 60.0 + (i if damage == "focal" else 0)
        doc["cx"] = 30.0 if damage == "off-centre" else 24.0
    if damage in ("nan", "singular", "outside", "few", "focal", "off-centre"):
        (scene / "transforms.json").write_text(json.dumps(doc))
    if damage == "json":
        (scene / "transforms.json").write_text("{not json")
    out_dir = tmp_path / "zoo"
    assert needle in one_error_line(capsys, "fit", "images", scene, "--out", out_dir)
    assert not out_dir.exists()


def test_fit_images_builds_a_zoo(capsys, tmp_path, tiny_fit, monkeypatch):
    import nerfspace.zoo as zoo_pkg

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    make_scene(tmp_path / "scenes" / "chairs" / "c0")
    out_dir = tmp_path / "zoo"
    code = main(
        ["fit", "images", str(tmp_path / "scenes"), "--out", str(out_dir), "--archs", "mlp", "--json"]
    )
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["nerfs"] == 1 and info["categories"] == {"chairs": 1}
    nerf = load_nerf(out_dir / "nerfs" / "mlp" / "c0.safetensors")
    source = json.loads(nerf.meta["source"])
    assert source["kind"] == "images" and source["file"] == str(
        (tmp_path / "scenes" / "chairs" / "c0").resolve()
    )
    assert math.isfinite(float(nerf.meta["psnr"]))


def test_rgb_photos_on_a_stated_background(capsys, tmp_path, tiny_fit, monkeypatch):
    import nerfspace.zoo as zoo_pkg
    from helpers import run

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    scene = tmp_path / "s"
    make_scene(scene)
    for png in scene.glob("*.png"):  # RGB on black, as some captures come
        rgba = np.asarray(Image.open(png), dtype=np.float64) / 255
        rgb = rgba[..., :3] * rgba[..., 3:]
        Image.fromarray((rgb * 255).round().astype(np.uint8), "RGB").save(png)
    with_bg, frame = read_photos(scene, background=(0.0, 0.0, 0.0))
    assert np.allclose(frame.center[:2], OFFSET[:2], atol=0.15) and with_bg.images[0, 0, 0].tolist() == [
        1,
        1,
        1,
    ]
    code, out, _ = run(
        capsys,
        "fit",
        "images",
        scene,
        "--out",
        tmp_path / "z",
        "--archs",
        "mlp",
        "--background",
        "0,0,0",
        "--json",
    )
    assert code == 0 and json.loads(out)["nerfs"] == 1
    assert "R,G,B" in one_error_line(
        capsys, "fit", "images", scene, "--out", tmp_path / "y", "--background", "0,0"
    )
