"""Bad input fails at the CLI as one line naming the file and the reason, exit 2, with an error type of
its family; internal errors exit 1; --debug adds the traceback."""

import json
import pathlib

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tests.conftest import TINY_FIT

import nerfspace.zoo.storage as storage
from nerfspace import errors, fields
from nerfspace.archs import get_preset
from nerfspace.cli import main
from nerfspace.zoo import NeRF, ZooConfig, load_nerf, plan, save_nerf


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, err, *needles, exit_code=2):
    assert code == exit_code, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in err, (needle, err)


def random_nerf(preset: str, scale: str = "small", seed: int = 0, meta: dict | None = None) -> NeRF:
    spec = get_preset(preset, scale)
    params = fields.init_params(spec, 1, torch.Generator().manual_seed(seed))
    occ = torch.ones(8, 8, 8, dtype=torch.bool)
    return NeRF(spec, {n: t[0] for n, t in params.items()}, occ, {"psnr": "20.0", **(meta or {})})


@pytest.fixture
def nerf_file(tmp_path):
    path = tmp_path / "n.safetensors"
    save_nerf(path, random_nerf("mlp"))
    return path


def rewrite(path, edit_tensors=None, edit_meta=None):
    """Rewrite a NeRF file with edited tensors and/or metadata (its checksum kept: the specific reason
    is reported before the checksum mismatch)."""
    with safe_open(path, framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["nerfspace"])
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    save_file(tensors, path, metadata={"nerfspace": json.dumps(meta)})


def _set(tensors, name, value):
    tensors[name] = value


def _spec_family(meta):
    spec = json.loads(meta["spec"])
    meta["spec"] = json.dumps({**spec, "family": "kan"})


DEFECTS = {
    "zero-byte": (lambda p: p.write_bytes(b""), errors.FileFormatError, "truncated or corrupted"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:-200]), errors.FileFormatError, "truncated"),
    "flipped bit": (
        lambda p: p.write_bytes(
            p.read_bytes()[:-40] + bytes([p.read_bytes()[-40] ^ 1]) + p.read_bytes()[-39:]
        ),
        errors.FileFormatError,
        "do not match their checksum",
    ),
    "float64": (
        lambda p: rewrite(p, lambda t: _set(t, "mlp.0.weight", t["mlp.0.weight"].double())),
        errors.SpecMismatchError,
        "dtype torch.float64",
    ),
    "nan": (
        lambda p: rewrite(p, lambda t: t["mlp.1.weight"].view(-1).__setitem__(3, float("nan"))),
        errors.NonFiniteError,
        "NaN or Inf",
    ),
    "inf": (
        lambda p: rewrite(p, lambda t: t["mlp.0.weight"].view(-1).__setitem__(0, float("inf"))),
        errors.NonFiniteError,
        "'mlp.0.weight' holds NaN or Inf",
    ),
    "shape": (
        lambda p: rewrite(p, lambda t: _set(t, "mlp.1.weight", t["mlp.1.weight"][:, :5].contiguous())),
        errors.SpecMismatchError,
        "'mlp.1.weight' has shape",
    ),
    "missing tensor": (
        lambda p: rewrite(p, lambda t: t.pop("mlp.2.weight")),
        errors.SpecMismatchError,
        "missing",
    ),
    "unknown family": (
        lambda p: rewrite(p, edit_meta=_spec_family),
        errors.SpecError,
        "unknown family 'kan'",
    ),
    "no occupancy": (
        lambda p: rewrite(p, lambda t: t.pop("occupancy")),
        errors.FileFormatError,
        "occupancy grid",
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_a_defective_nerf_file_is_one_line_of_its_family(capsys, nerf_file, defect):
    damage, family, reason = DEFECTS[defect]
    damage(nerf_file)
    with pytest.raises(family):
        load_nerf(nerf_file)
    code, _, err = run(capsys, "inspect", str(nerf_file))
    assert_one_line(code, err, nerf_file, reason)


def fake_zoo(root: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """A zoo folder of randomly initialised NeRFs (no fitting): 3 chairs x mlp."""
    manifest = plan(ZooConfig(classes=("chair",), objects_per_class=3, archs=("mlp",)), TINY_FIT)
    for i, n in enumerate(manifest["nerfs"]):
        obj = next(o for o in manifest["objects"] if o["id"] == n["object"])
        meta = {"object_id": obj["id"], "category": "chair", "split": obj["split"], "scale": "small"}
        (root / n["file"]).parent.mkdir(parents=True, exist_ok=True)
        save_nerf(root / n["file"], random_nerf("mlp", seed=i, meta=meta))
    write_manifest(root, manifest)
    return root, manifest


def write_manifest(root, manifest):
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_a_manifest_listing_an_object_twice_is_refused(capsys, tmp_path):
    zoo, manifest = fake_zoo(tmp_path)
    assert run(capsys, "zoo", "info", str(zoo))[0] == 0
    manifest["objects"].append(dict(manifest["objects"][0]))
    write_manifest(zoo, manifest)
    dup = manifest["objects"][0]["id"]
    for argv in (
        ["zoo", "info", str(zoo)],
        ["train", str(zoo), "--out", str(tmp_path / "run"), "--epochs", "1"],
    ):
        code, _, err = run(capsys, *argv)
        assert_one_line(code, err, zoo / "manifest.json", f"{dup!r} is listed twice")
    assert not (tmp_path / "run").exists()


def test_a_nerf_file_of_another_scale_in_a_zoo_is_refused(capsys, tmp_path):
    zoo, manifest = fake_zoo(tmp_path)
    victim = zoo / manifest["nerfs"][1]["file"]
    meta = {
        "object_id": manifest["nerfs"][1]["object"],
        "category": "chair",
        "split": "train",
        "scale": "paper",
    }
    save_nerf(victim, random_nerf("mlp", "paper", meta=meta))
    for argv in (
        ["zoo", "info", str(zoo)],
        ["train", str(zoo), "--out", str(tmp_path / "run"), "--epochs", "1"],
    ):
        code, _, err = run(capsys, *argv)
        assert_one_line(code, err, victim, "scale 'paper' in a zoo of scale 'small'")


def test_unreadable_manifest_and_nerf_files_name_the_path(capsys, tmp_path, monkeypatch):
    zoo, manifest = fake_zoo(tmp_path)
    denied = [zoo / "manifest.json", zoo / manifest["nerfs"][0]["file"]]
    read_text, open_st = pathlib.Path.read_text, storage.safe_open

    def refuse(path):
        if pathlib.Path(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(
        pathlib.Path, "read_text", lambda self, *a, **k: refuse(self) or read_text(self, *a, **k)
    )
    monkeypatch.setattr(storage, "safe_open", lambda path, **k: refuse(path) or open_st(path, **k))
    code, _, err = run(capsys, "zoo", "info", str(zoo))
    assert_one_line(code, err, denied[0], "permission denied")
    code, _, err = run(capsys, "inspect", str(denied[1]))
    assert_one_line(code, err, denied[1], "permission denied")
    with pytest.raises(errors.AccessError):
        load_nerf(denied[1])


def test_an_unreadable_folder_met_anywhere_is_bad_input(capsys, tmp_path, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    iterdir = pathlib.Path.iterdir

    def guarded(self):
        if self == out:
            raise PermissionError(13, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(pathlib.Path, "iterdir", guarded)
    code, _, err = run(capsys, "zoo", "build", str(out), "--classes", "chair", "-n", "1")
    assert_one_line(code, err, out, "permission denied")


def test_internal_errors_exit_1_and_debug_shows_the_traceback(capsys, tmp_path, monkeypatch):
    import nerfspace.zoo as zoo_pkg

    def boom(zoo):
        raise RuntimeError("boom")

    monkeypatch.setattr(zoo_pkg, "zoo_info", boom)
    code, _, err = run(capsys, "zoo", "info", str(tmp_path))
    assert_one_line(code, err, "internal error", "RuntimeError: boom", exit_code=1)
    code, _, err = run(capsys, "--debug", "zoo", "info", str(tmp_path))
    assert code == 1 and "Traceback" in err and "RuntimeError: boom" in err
    monkeypatch.undo()
    code, _, err = run(capsys, "--debug", "zoo", "info", str(tmp_path))
    assert code == 2 and "Traceback" in err and "not a zoo" in err.strip().splitlines()[-1]
