from pathlib import Path

import pytest
import torch

import nerfspace.zoo.build as build_mod
from nerfspace.archs import get_preset
from nerfspace.errors import InputError
from nerfspace.executors import Executor
from nerfspace.locks import LOCK_NAME
from nerfspace.shapes import make_object
from nerfspace.zoo import NeRF, ZooConfig, build_zoo, fit, load_nerf, plan, save_nerf, zoo_info
from nerfspace.zoo.build import split_counts


def files(root: Path) -> dict[str, bytes]:
    """The zoo's files (not the folder's lock, which names its last owner's pid)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != LOCK_NAME
    }


def test_splits_and_protocol(tiny_fit):
    cfg = ZooConfig(classes=("chair", "car"), objects_per_class=5)
    m = plan(cfg, tiny_fit)
    assert split_counts(5) == {"train": 3, "val": 1, "test": 1}
    assert sum(o["split"] == "test" for o in m["objects"]) == 2
    per_object = {}
    for n in m["nerfs"]:
        per_object.setdefault(n["object"], set()).add(n["preset"])
    for o in m["objects"]:
        assert len(per_object[o["id"]]) == (13 if o["split"] == "test" else 3)
    named = plan(ZooConfig(classes=("chair",), objects_per_class=3, archs=("hash_l8",)), tiny_fit)
    assert {n["preset"] for n in named["nerfs"]} == {"hash_l8"} and len(named["nerfs"]) == 3


def test_a_fit_improves_psnr(tiny_fit):
    from dataclasses import replace

    obj = [make_object("car", 3)]
    cfg = replace(tiny_fit, image_size=16, rays_per_step=256, samples_per_diagonal=64, occ_res=16)
    short = fit(get_preset("mlp"), obj, [0], replace(cfg, steps=2))
    longer = fit(get_preset("mlp"), obj, [0], replace(cfg, steps=200))
    assert longer.psnr[0] > short.psnr[0] + 3.0
    assert longer.history[0] > longer.history[-1]


def test_same_seed_gives_a_byte_identical_zoo(tmp_path, tiny_fit):
    cfg = ZooConfig(classes=("lamp",), objects_per_class=2, archs=("mlp", "triplane"), seed=7)
    build_zoo(tmp_path / "a", cfg, fit_cfg=tiny_fit)
    build_zoo(tmp_path / "b", cfg, fit_cfg=tiny_fit)
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert len(a) == 5 and a == b
    other = ZooConfig(classes=("lamp",), objects_per_class=2, archs=("mlp", "triplane"), seed=8)
    build_zoo(tmp_path / "c", other, fit_cfg=tiny_fit)
    assert files(tmp_path / "c")["nerfs/mlp/lamp_0000.safetensors"] != a["nerfs/mlp/lamp_0000.safetensors"]


def test_resume_after_a_crash_redoes_nothing(tmp_path, tiny_fit, monkeypatch):
    from dataclasses import replace

    fit_cfg = replace(tiny_fit, batch=2)
    cfg = ZooConfig(classes=("sofa",), objects_per_class=4, archs=("mlp",))
    out = tmp_path / "zoo"

    def crash(done, total):
        if done >= 2:
            raise KeyboardInterrupt  # killed after the first batch

    with pytest.raises(KeyboardInterrupt):
        build_zoo(out, cfg, progress=crash, fit_cfg=fit_cfg)
    assert sum(k.endswith(".safetensors") for k in files(out)) == 2
    (out / "nerfs/mlp/.nerfspace-tmp.sofa_0003.safetensors.999999999.x.tmp").write_bytes(b"cut short")
    (out / "nerfs/mlp/sofa_0001.safetensors").unlink()  # as if killed between the batch's two writes
    first = files(out)

    fitted = []
    real_fit = build_mod.fit
    monkeypatch.setattr(
        build_mod,
        "fit",
        lambda spec, objs, seeds, *a: fitted.extend(seeds) or real_fit(spec, objs, seeds, *a),
    )
    build_zoo(out, cfg, fit_cfg=fit_cfg)
    assert len(fitted) == 4  # the missing NeRFs' batches, whole: the first one's again, the second
    after = files(out)
    assert all(after[k] == v for k, v in first.items() if k.endswith(".safetensors"))
    assert not any(k.endswith(".tmp") for k in after)
    info = zoo_info(out)
    assert info["complete"] and info["presets"]["mlp"]["count"] == 4

    reference = tmp_path / "ref"
    build_zoo(reference, cfg, fit_cfg=fit_cfg)
    assert files(reference) == after  # a resumed build equals an uninterrupted one


def test_existing_zoo_with_other_settings_is_refused(tmp_path, tiny_fit):
    out = tmp_path / "zoo"
    build_zoo(out, ZooConfig(classes=("phone",), objects_per_class=1, archs=("mlp",)), fit_cfg=tiny_fit)
    with pytest.raises(InputError, match="other settings"):
        build_zoo(out, ZooConfig(classes=("phone",), objects_per_class=2, archs=("mlp",)), fit_cfg=tiny_fit)


def test_nerf_file_round_trip_and_validation(tmp_path):
    spec = get_preset("triplane")
    params = {n: t[0] for n, t in __import__("nerfspace.fields", fromlist=["x"]).init_params(spec, 1).items()}
    occ = torch.rand(8, 8, 8) > 0.5
    path = tmp_path / "n.safetensors"
    save_nerf(path, NeRF(spec, params, occ, {"object_id": "x"}))
    back = load_nerf(path)
    assert back.spec == spec and back.preset == "triplane" and torch.equal(back.occupancy, occ)
    assert all(torch.equal(back.params[n], params[n]) for n in params)
    assert back.meta["object_id"] == "x"

    bad = dict(params)
    bad["mlp.0.weight"] = bad["mlp.0.weight"].clone()
    bad["mlp.0.weight"][0, 0] = float("nan")
    save_nerf(tmp_path / "nan.safetensors", NeRF(spec, bad, occ))
    with pytest.raises(InputError, match="NaN or Inf"):
        load_nerf(tmp_path / "nan.safetensors")

    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.safetensors").write_bytes(b"")
    for name in ("trunc", "empty"):
        with pytest.raises(InputError, match="truncated or corrupted"):
            load_nerf(tmp_path / f"{name}.safetensors")
    with pytest.raises(InputError, match="no such file"):
        load_nerf(tmp_path / "missing.safetensors")


def test_distill_fit_learns_the_object(tiny_fit):
    from dataclasses import replace

    obj = [make_object("cabinet", 0)]
    cfg = replace(
        tiny_fit, mode="distill", image_size=16, rays_per_step=256, samples_per_diagonal=64, occ_res=16
    )
    short = fit(get_preset("triplane"), obj, [0], replace(cfg, steps=2))
    longer = fit(get_preset("triplane"), obj, [0], replace(cfg, steps=200))
    assert longer.psnr[0] > short.psnr[0] + 3.0


def test_parallel_workers_write_the_same_zoo(tmp_path, tiny_fit):
    from dataclasses import replace

    fit_cfg = replace(tiny_fit, batch=1)
    cfg = ZooConfig(classes=("rifle",), objects_per_class=2, archs=("hash",))
    build_zoo(tmp_path / "one", cfg, fit_cfg=fit_cfg)
    build_zoo(tmp_path / "two", cfg, Executor(workers=2), fit_cfg=fit_cfg)
    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) == 3
    for name in one:
        if name.endswith(".safetensors"):
            a, b = load_nerf(tmp_path / "one" / name), load_nerf(tmp_path / "two" / name)
            assert all(torch.allclose(a.params[n], b.params[n], atol=1e-4) for n in a.params)


def test_a_field_with_no_occupied_cell_in_the_hull_samples_the_whole_hull(tiny_fit):
    from nerfspace.zoo.fitting import sampled_cells

    r = tiny_fit.occ_res
    hull = torch.zeros(2, r, r, r, dtype=torch.bool)
    hull[:, : r // 2] = True
    density = torch.zeros(2, r, r, r)
    density[0, r // 2 :] = 1e4  # dense only outside the hull: nothing to sample there
    density[1, :2] = 1e4  # dense inside the hull: only those cells
    cells = sampled_cells(density.flatten(1), hull, tiny_fit)
    assert torch.equal(cells[0], hull[0])
    assert cells[1, :2].all() and cells[1].sum() == 2 * r * r
