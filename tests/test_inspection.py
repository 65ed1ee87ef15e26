"""Inspection: machine parts with known defects, the k-nearest-normals anomaly model, the protocol's
tables, and the `nerfspace anomaly` commands."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nerfspace.cli import main
from nerfspace.embeddings import Embeddings, save_embeddings
from nerfspace.errors import InputError
from nerfspace.evaluation.anomaly import AnomalyConfig, KNNAnomaly
from nerfspace.evaluation.inspection import InspectionConfig, defect_region, inspection_results
from nerfspace.shapes.parts import DEFECTS, PARTS, make_part, severity_value
from nerfspace.zoo import ZooConfig, build_zoo, load_nerf, plan
from nerfspace.zoo.build import load_manifest
from nerfspace.zoo.items import Item, zoo_items
from nerfspace.zoo.storage import read_metadata


def _solid(obj, x: torch.Tensor) -> torch.Tensor:
    return obj.sdf(x) < 0


@pytest.mark.parametrize("part", PARTS)
def test_a_defect_changes_its_part_inside_its_region_only(part):
    gen = torch.Generator().manual_seed(0)
    normal, none = make_part(part, 3)
    assert none is None
    x = torch.rand(60_000, 3, generator=gen) * 1.2 - 0.6
    base = _solid(normal, x)
    assert 0.01 < base.float().mean() < 0.6  # a real solid inside the box
    for defect in DEFECTS:
        obj, region = make_part(part, 3, defect, "medium")
        centre = torch.tensor(region.centre, dtype=torch.float32)
        assert (centre.abs() < 0.62).all() and 0.0 < region.radius < 0.15
        outside = (x - centre).norm(dim=1) > region.radius + 0.01  # + the smooth union's reach
        assert torch.equal(_solid(obj, x[outside]), base[outside]), (part, defect)
        inside = centre + (torch.rand(20_000, 3, generator=gen) * 2 - 1) * region.radius
        assert (_solid(obj, inside) != _solid(normal, inside)).any(), (part, defect)


def test_parts_are_a_pure_function_of_their_arguments():
    x = torch.rand(2000, 3, generator=torch.Generator().manual_seed(1)) - 0.5
    a, ra = make_part("gear", 5, "notch", 0.5)
    b, rb = make_part("gear", 5, "notch", 0.5)
    assert torch.equal(a.sdf(x), b.sdf(x)) and torch.equal(a.albedo(x), b.albedo(x))
    assert ra.to_dict() == rb.to_dict()
    c, _ = make_part("gear", 6)
    assert not torch.equal(a.sdf(x), c.sdf(x))


@pytest.mark.parametrize("bad", [0, -0.1, 3.5, float("nan"), "bogus", "4"])
def test_a_severity_outside_0_3_is_refused(bad):
    with pytest.raises(InputError, match="severity"):
        severity_value(bad)
    assert severity_value("medium") == 0.65 and severity_value("0.5") == 0.5 and severity_value("2") == 2.0


def test_unknown_part_or_defect_is_refused():
    with pytest.raises(InputError, match="unknown part"):
        make_part("sprocket", 0)
    with pytest.raises(InputError, match="unknown defect"):
        make_part("gear", 0, "rust", 0.5)
    with pytest.raises(InputError, match="defects apply to parts only"):
        ZooConfig(classes=("chair",), defects=("dent",), severities=(0.5,), defective_per_class=1)
    with pytest.raises(InputError, match="unknown defect"):
        ZooConfig(classes=("gear",), defects=("rust",), severities=(0.5,), defective_per_class=1)


def test_an_inspection_zoo_plans_defective_test_parts_in_the_test_architectures(tiny_fit):
    cfg = ZooConfig(
        classes=("gear", "bolt"),
        objects_per_class=5,
        archs=("mlp",),
        test_archs=("hash", "triplane"),
        defects=("dent", "burr"),
        severities=(0.35, 1.0),
        defective_per_class=2,
    )
    manifest = plan(cfg, tiny_fit)
    defective = [o for o in manifest["objects"] if "defect" in o]
    assert len(defective) == 2 * 2 * 2 * 2 and all(o["split"] == "test" for o in defective)
    objects = {o["id"]: o for o in manifest["objects"]}
    for n in manifest["nerfs"]:
        test = objects[n["object"]]["split"] == "test"
        assert n["preset"] in (("hash", "triplane") if test else ("mlp",))
    assert manifest["config"]["defects"] == ["dent", "burr"]
    assert "defects" not in plan(ZooConfig(classes=("gear",), objects_per_class=3), tiny_fit)["config"]


def test_a_built_inspection_zoo_records_each_defect_and_its_region(tmp_path, tiny_fit):
    cfg = ZooConfig(
        classes=("flange",),
        objects_per_class=1,
        archs=("mlp",),
        defects=("extra_hole",),
        severities=(1.0,),
        defective_per_class=1,
    )
    build_zoo(tmp_path / "zoo", cfg, fit_cfg=tiny_fit)
    items = zoo_items(tmp_path / "zoo")
    broken = [it for it in items if it.defect]
    assert [(it.defect, it.severity) for it in broken] == [("extra_hole", 1.0)]
    meta = read_metadata(broken[0].file)
    assert meta["defect"] == "extra_hole" and "radius" in json.loads(meta["region"])
    seed = next(o["seed"] for o in load_manifest(tmp_path / "zoo")["objects"] if o["id"] == broken[0].object)
    _, truth = make_part("flange", seed, "extra_hole", 1.0)
    centre, radius = defect_region(load_nerf(broken[0].file))  # aligned capture: the placed frame
    assert torch.allclose(centre, torch.tensor(truth.centre, dtype=torch.float32))
    assert radius == pytest.approx(truth.radius, abs=1e-6)


def _clusters(n_normal: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=16)
    normals = centre + 0.1 * rng.normal(size=(n_normal, 16))
    anomalies = -centre + 0.1 * rng.normal(size=(10, 16))
    return normals, anomalies


def test_knn_anomaly_flags_far_parts_and_about_its_false_alarm_rate_of_normals(tmp_path):
    normals, anomalies = _clusters(40)
    model = KNNAnomaly(AnomalyConfig(k=3, false_alarm=0.1)).fit(normals)
    assert model.predict(anomalies).all()
    fresh, _ = _clusters(400, seed=0)
    assert 0.02 < model.predict(fresh[40:]).mean() < 0.25  # new normals of the same spread
    path = tmp_path / "model.safetensors"
    model.save(path, {"checkpoint": "abc"})
    loaded, meta = KNNAnomaly.load(path)
    assert meta["checkpoint"] == "abc" and loaded.threshold == model.threshold
    np.testing.assert_allclose(loaded.score_samples(anomalies), model.score_samples(anomalies), rtol=1e-6)


def test_knn_anomaly_needs_enough_normals_and_leaves_out_whole_objects():
    normals, _ = _clusters(19)
    with pytest.raises(InputError, match="give at least 20"):
        KNNAnomaly(AnomalyConfig(k=3, false_alarm=0.05)).fit(normals)
    twins = np.concatenate([normals, normals + 1e-6])  # every object twice (two architectures)
    objects = [f"o{i}" for i in range(19)] * 2
    alone = KNNAnomaly(AnomalyConfig(k=1, false_alarm=0.1)).fit(twins)
    grouped = KNNAnomaly(AnomalyConfig(k=1, false_alarm=0.1)).fit(twins, objects)
    assert alone.threshold < 1e-6 < grouped.threshold  # a twin is no evidence of normality
    # each normal's nearest normals left out are of other objects (the defect map's threshold uses them)
    assert all(objects[j] != objects[i] for i, row in enumerate(grouped.left_out) for j in row)
    with pytest.raises(InputError, match="false-alarm"):
        AnomalyConfig(false_alarm=1.0)


def _synthetic_inspection(tmp_path, separation: float) -> tuple[Embeddings, list[Item]]:
    normals, anomalies = _clusters(30)
    anomalies = normals[:10] + separation * (anomalies - normals[:10])
    rows, items = [], []
    for i, v in enumerate(normals):
        split, preset = ("test", "hash") if i >= 24 else ("train", "mlp")
        items.append(Item(f"gear_{i}", "gear", preset, split, tmp_path / f"{i}.safetensors"))
        rows.append(v)
    for i, v in enumerate(anomalies):
        items.append(
            Item(
                f"gear_d{i}",
                "gear",
                "hash",
                "test",
                tmp_path / f"d{i}.safetensors",
                ("dent", "notch")[i % 2],
                0.65,
            )
        )
        rows.append(v)
    meta = [
        {
            "object": it.object,
            "category": "gear",
            "preset": it.preset,
            "split": it.split,
            "file": str(it.file),
        }
        for it in items
    ]
    return Embeddings(torch.tensor(np.array(rows), dtype=torch.float32), meta, {"baseline": "x"}, ""), items


def test_inspection_tables_separate_far_defects_and_not_indistinguishable_ones(tmp_path):
    emb, items = _synthetic_inspection(tmp_path, 1.0)
    r = inspection_results(emb, items, InspectionConfig(anomaly=AnomalyConfig(k=3, false_alarm=0.1)))
    assert r["reference_parts"] == 24 and r["test_parts"] == {"normal": 6, "defective": 10}
    assert r["severity"]["0.65"]["auroc"] == pytest.approx(1.0)
    assert set(r["per_defect"]["0.65"]) == {"dent", "notch"} and r["per_arch"]["0.65"][
        "hash"
    ] == pytest.approx(1.0)
    same, items = _synthetic_inspection(tmp_path, 0.0)  # "defective" rows equal to normal reference rows
    r = inspection_results(same, items, InspectionConfig(anomaly=AnomalyConfig(k=3, false_alarm=0.1)))
    assert r["severity"]["0.65"]["auroc"] < 0.5


def test_anomaly_cli_fits_scores_and_refuses_bad_input(tmp_path, capsys):
    emb, _ = _synthetic_inspection(tmp_path, 1.0)
    normals = Embeddings(emb.vectors[:24], emb.items[:24], {"baseline": "x"}, "")
    save_embeddings(tmp_path / "normals.safetensors", normals)
    save_embeddings(tmp_path / "all.safetensors", emb)
    save_embeddings(
        tmp_path / "few.safetensors", Embeddings(emb.vectors[:5], emb.items[:5], {"baseline": "x"}, "")
    )
    save_embeddings(tmp_path / "other.safetensors", Embeddings(emb.vectors, emb.items, {"baseline": "y"}, ""))
    model = str(tmp_path / "model.safetensors")
    assert (
        main(
            ["anomaly", "fit", str(tmp_path / "normals.safetensors"), "--out", model, "--false-alarm", "0.1"]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["anomaly", "score", model, str(tmp_path / "all.safetensors"), "--json"]) == 0
    parts = json.loads(capsys.readouterr().out)["parts"]
    assert all(p["flagged"] for p in parts[30:]) and not any(p["flagged"] for p in parts[:24])
    bad = [
        (
            ["anomaly", "fit", str(tmp_path / "few.safetensors"), "--out", str(tmp_path / "m2.safetensors")],
            "at least 20",
        ),
        (["anomaly", "score", model, str(tmp_path / "other.safetensors")], "another encoder"),
        (["zoo", "build", str(tmp_path / "z"), "--classes", "sprocket"], "unknown category"),
        (["zoo", "build", str(tmp_path / "z"), "--classes", "gear", "--defects", "rust"], "unknown defect"),
        (
            [
                "zoo",
                "build",
                str(tmp_path / "z"),
                "--classes",
                "gear",
                "--defects",
                "dent",
                "--severities",
                "3.5",
            ],
            "severity",
        ),
    ]
    from nerfspace.tagged import write_tagged

    broken = {
        "nan_threshold": ({"normals": torch.zeros(30, 4, dtype=torch.float64)}, {"threshold": float("nan")}),
        "flat_normals": ({"normals": torch.zeros(30, dtype=torch.float64)}, {"threshold": 0.1}),
        "bad_k": ({"normals": torch.zeros(30, 4, dtype=torch.float64)}, {"threshold": 0.1, "k": 0}),
    }
    for name, (tensors, meta) in broken.items():
        config = {"k": meta.pop("k", 3), "false_alarm": 0.05}
        write_tagged(
            tmp_path / f"{name}.safetensors", tensors, "nerfspace-anomaly/1", {**meta, "config": config}
        )
        bad.append(
            (
                [
                    "anomaly",
                    "score",
                    str(tmp_path / f"{name}.safetensors"),
                    str(tmp_path / "all.safetensors"),
                ],
                "",
            )
        )
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    bad.append(
        (
            ["anomaly", "score", str(tmp_path / "junk.safetensors"), str(tmp_path / "all.safetensors")],
            "not a readable",
        )
    )
    for argv, message in bad:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and err.startswith("error:"), (argv, err)


def test_the_parts_sheet_shows_every_part_and_defect(tmp_path):
    from PIL import Image

    from nerfspace.shapes.trace import parts_sheet

    parts_sheet(tmp_path / "parts.png", size=16)
    with Image.open(tmp_path / "parts.png") as image:
        assert image.size == (84 + 16 * (1 + len(DEFECTS)), 14 + 16 * len(PARTS))


def test_the_defect_map_peaks_at_the_defect_of_a_turned_and_shifted_part():
    from nerfspace.defect_map import Shape, defect_map
    from nerfspace.frames import Similarity, yaw_tilt_rotation

    def shape(obj):
        return Shape(lambda x: (obj.albedo(x), obj.density(x)))

    normal, _ = make_part("elbow", 4)
    part, region = make_part("elbow", 4, "burr", "high")
    pose = Similarity(yaw_tilt_rotation(2.0, 0.1, 0.5), torch.tensor([0.05, -0.03, 0.02]), 0.9)
    reference = shape(normal)
    m = defect_map(shape(part.posed(pose)), [reference])
    centre = pose.apply(torch.tensor(region.centre, dtype=torch.float32))
    assert float((m.peak() - centre).norm()) <= region.radius * pose.scale + 0.03
    # the same normal part, turned and shifted the same way, departs far less than the burred one
    assert defect_map(shape(normal.posed(pose)), [reference]).score() < 0.5 * m.score()


def test_anomaly_map_cli_maps_a_part_writes_its_cloud_and_refuses_bad_input(tmp_path, capsys):
    from helpers import one_error_line, run

    nerfs = Path(__file__).parents[1] / "src/nerfspace/demo_data/independent/zoo/nerfs"
    part, other = nerfs / "mlp/airplane_0001.safetensors", nerfs / "hash/airplane_0009.safetensors"
    code, out, _ = run(capsys, "anomaly", "map", part, part, "--json")
    itself = json.loads(out)
    assert code == 0 and len(itself["peak"]) == 3 and itself["points"] > 100
    code, out, _ = run(capsys, "anomaly", "map", part, other, "--out", tmp_path / "map.ply", "--json")
    apart = json.loads(out)
    assert code == 0 and apart["score"] > 2 * itself["score"]  # another object departs far more
    assert (tmp_path / "map.ply").read_bytes().startswith(b"ply\n")
    assert "exists" in one_error_line(capsys, "anomaly", "map", part, other, "--out", tmp_path / "map.ply")
    assert ".ply" in one_error_line(capsys, "anomaly", "map", part, other, "--out", tmp_path / "map.txt")
    assert "map.ply" not in one_error_line(capsys, "anomaly", "map", tmp_path / "none.safetensors", other)


def test_an_anomaly_model_fitted_with_maps_scores_by_defect_maps(tmp_path, capsys):
    from helpers import one_error_line, run

    data = Path(__file__).parents[1] / "src/nerfspace/demo_data/independent"
    nerfs, encoder = data / "zoo/nerfs", data / "encoder.safetensors"
    normals = [nerfs / f"mlp/airplane_{i:04d}.safetensors" for i in (1, 9)] + [
        nerfs / f"hash/airplane_{i:04d}.safetensors" for i in (1, 9)
    ]
    model = tmp_path / "m.safetensors"
    fit = ("anomaly", "fit", *normals, "--encoder", encoder, "--out", model, "--map", "--k", "1")
    assert run(capsys, *fit, "--false-alarm", "0.5")[0] == 0
    car = nerfs / "mlp/car_0007.safetensors"
    code, out, err = run(
        capsys, "anomaly", "score", model, normals[0], car, "--encoder", encoder, "--normals", nerfs, "--json"
    )
    assert code == 0, err
    scored = json.loads(out)
    itself, other = scored["parts"]
    assert len(other["peak"]) == 3 and itself["score"] < 0.5 * other["score"]  # a normal maps onto itself
    assert other["flagged"] and not itself["flagged"]
    assert "--normals" in one_error_line(capsys, "anomaly", "score", model, car, "--encoder", encoder)
    err = one_error_line(capsys, "anomaly", "score", model, car, "--encoder", encoder, "--normals", car)
    assert "not among the files given" in err
    plain = tmp_path / "plain.safetensors"
    assert (
        run(capsys, *fit[:6], "--encoder", encoder, "--out", plain, "--k", "1", "--false-alarm", "0.5")[0]
        == 0
    )
    assert "--map" in one_error_line(
        capsys, "anomaly", "score", plain, car, "--encoder", encoder, "--normals", car
    )
