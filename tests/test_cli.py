import json

import pytest
import torch

from nerfspace import fields
from nerfspace.archs import get_preset
from nerfspace.cli import main
from nerfspace.zoo import NeRF, save_nerf


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def nerf_file(tmp_path):
    spec = get_preset("hash")
    params = {n: t[0] for n, t in fields.init_params(spec, 1, torch.Generator().manual_seed(0)).items()}
    path = tmp_path / "n.safetensors"
    save_nerf(path, NeRF(spec, params, torch.ones(32, 32, 32, dtype=torch.bool), {"scale": "small"}))
    return path


def test_archs_json(capsys):
    code, out, _ = run(capsys, "archs", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["presets"]) == 13 and data["presets"]["mlp"]["params"] == 3712
    code, out, _ = run(capsys, "archs", "--scale", "paper", "--json")
    assert json.loads(out)["presets"]["triplane"]["params"] == 77_824


def test_inspect_and_render(capsys, nerf_file, tmp_path):
    code, out, _ = run(capsys, "inspect", str(nerf_file), "--json")
    info = json.loads(out)
    assert code == 0 and info["preset"] == "hash" and info["params"] == get_preset("hash").n_params
    png = tmp_path / "view.png"
    code, _, _ = run(capsys, "render", str(nerf_file), "--out", str(png), "--size", "16", "--views", "2")
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--classes", "chair,dragon"], "unknown category 'dragon'"),
        (["--archs", "mlp,resnet"], "unknown architecture 'resnet'"),
        (["--objects-per-class", "0"], "must be >= 1"),
        (["--fit", "magic"], "unknown fit mode"),
        (["--scale", "huge"], "unknown scale"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--workers", "0"], "--workers must be >= 1"),
    ],
)
def test_zoo_build_bad_arguments(capsys, tmp_path, args, needle):
    out_dir = tmp_path / "zoo"
    code, _, err = run(capsys, "zoo", "build", str(out_dir), *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not out_dir.exists()


def test_zoo_build_into_a_file_fails(capsys, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, err = run(capsys, "zoo", "build", str(target), "--classes", "chair", "-n", "1")
    assert code == 2 and "not a folder" in err and target.read_text() == "x"


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_damaged_nerf_files_fail_cleanly(capsys, nerf_file, tmp_path, damage):
    data = nerf_file.read_bytes()
    nerf_file.write_bytes({"truncate": data[:100], "empty": b"", "garbage": b"\x00" * 64 + data[64:]}[damage])
    png = tmp_path / "x.png"
    for argv in (["inspect", str(nerf_file)], ["render", str(nerf_file), "--out", str(png)]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and str(nerf_file) in err and len(err.strip().splitlines()) == 1
    assert not png.exists()


def test_zoo_info_on_a_non_zoo(capsys, tmp_path):
    code, _, err = run(capsys, "zoo", "info", str(tmp_path))
    assert code == 2 and "not a zoo" in err


def test_zoo_build_json_and_a_damaged_zoo(capsys, tmp_path, tiny_fit, monkeypatch):
    import nerfspace.zoo as zoo_pkg

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    out_dir = tmp_path / "zoo"
    code, out, _ = run(capsys, "zoo", "build", str(out_dir), "--classes", "bench", "-n", "1", "--json")
    info = json.loads(out)
    assert (
        code == 0
        and info["nerfs"] == 3
        and info["complete"]
        and set(info["presets"]) == {"mlp", "triplane", "hash"}
    )
    victim = out_dir / "nerfs" / "hash" / "bench_0000.safetensors"
    victim.write_bytes(victim.read_bytes()[:50])
    code, _, err = run(capsys, "zoo", "info", str(out_dir))
    assert code == 2 and str(victim) in err and "truncated or corrupted" in err


def test_render_into_a_missing_folder(capsys, nerf_file, tmp_path):
    code, _, err = run(capsys, "render", str(nerf_file), "--out", str(tmp_path / "nope" / "x.png"))
    assert code == 2 and "no such folder" in err
