import math

import numpy as np
import pytest
import torch

from helpers import one_error_line
from nerfspace.errors import FileFormatError
from nerfspace.frames import Similarity, axis_rotation
from nerfspace.render import Cameras
from nerfspace.shapes.splat_files import SH_C0, read_ply_vertices, read_points, read_splats
from nerfspace.shapes.splats import LOW_PASS, Splats

FRONT = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2]]])  # at z = 2 looking down -z, +y up


def one(mean, std, opacity, color):
    return Splats(
        torch.tensor([mean], dtype=torch.float32),
        torch.eye(3)[None] * std**2,
        torch.tensor([opacity]),
        torch.tensor([color]),
    )


def test_one_gaussian_is_its_projected_footprint():
    cam = Cameras(FRONT, focal=40.0, size=33)  # odd: the optical axis hits pixel 16's centre
    img = one([0.0, 0.0, 0.0], 0.05, 0.8, [1.0, 0.0, 0.0]).render(cam)[0]
    var = (40.0 * 0.05 / 2.0) ** 2 + LOW_PASS
    for k in (0, 1, 2):
        alpha = 0.8 * math.exp(-0.5 * k * k / var)
        expected = torch.tensor([1.0, 1 - alpha, 1 - alpha])  # red over white
        assert torch.allclose(img[16, 16 + k], expected, atol=1e-4)
    assert torch.equal(img[0, 0], torch.ones(3))


def test_gaussians_composite_front_to_back_whatever_their_order():
    near = one([0.0, 0.0, 0.5], 0.05, 0.9, [1.0, 0.0, 0.0])  # nearer the camera at z = 2
    far = one([0.0, 0.0, -0.5], 0.05, 0.9, [0.0, 0.0, 1.0])
    both = [
        Splats(
            *(
                torch.cat([getattr(a, k), getattr(b, k)])
                for k in ("means", "covariances", "opacities", "colors")
            )
        )
        for a, b in ((near, far), (far, near))
    ]
    cam = Cameras(FRONT, focal=40.0, size=33)
    a, b = (s.render(cam)[0] for s in both)
    assert torch.allclose(a, b, atol=1e-6)
    centre = a[16, 16]
    assert centre[0] > 0.85 and centre[2] < 0.2  # red in front, blue mostly hidden


def test_posed_splats_move_with_their_pose():
    s = one([0.3, 0.0, 0.0], 0.05, 0.9, [0.0, 1.0, 0.0])
    turn = Similarity(axis_rotation(torch.tensor([0.0, 0.0, 1.0]), math.pi / 2), torch.zeros(3), 0.5)
    moved = s.posed(turn)
    centre = moved.bounds.mean(0)
    assert torch.allclose(centre, torch.tensor([0.0, 0.15, 0.0]), atol=1e-6)


def write_ply(path, columns: dict[str, np.ndarray], declared: int | None = None, faces: int = 0):
    n = len(next(iter(columns.values())))
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {declared or n}"]
    header += [f"property float {k}" for k in columns]
    if faces:
        header += [f"element face {faces}", "property list uchar int vertex_indices"]
    header.append("end_header")
    body = np.stack([columns[k] for k in columns], 1).astype("<f4").tobytes()
    path.write_bytes(("\n".join(header) + "\n").encode() + body)


def splat_columns(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = {k: rng.normal(size=n) for k in "xyz"}
    cols.update({f"scale_{i}": np.log(rng.uniform(0.01, 0.05, n)) for i in range(3)})
    cols.update({f"rot_{i}": rng.normal(size=n) for i in range(4)})
    cols["opacity"] = rng.normal(size=n)
    cols.update({f"f_dc_{i}": rng.normal(size=n) for i in range(3)})
    return cols


def test_a_3dgs_ply_reads_as_splats(tmp_path):
    cols = splat_columns(50)
    write_ply(tmp_path / "s.ply", cols)
    splats, frame = read_splats(tmp_path / "s.ply", up="z")
    extent = splats.means.amax(0) - splats.means.amin(0)
    assert extent.max() == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(splats.opacities, torch.sigmoid(torch.tensor(cols["opacity"]).float()), atol=1e-6)
    rgb = np.clip(0.5 + SH_C0 * np.stack([cols[f"f_dc_{i}"] for i in range(3)], 1), 0, 1)
    assert torch.allclose(splats.colors, torch.tensor(rgb).float(), atol=1e-6)
    # the covariance's eigenvalues are the scales squared, times the frame's scale squared
    eig = torch.linalg.eigvalsh(splats.covariances[0].double())
    scales = np.sort(np.exp([cols[f"scale_{i}"][0] for i in range(3)])) * frame.scale
    assert np.allclose(eig.numpy(), scales**2, rtol=1e-4)


@pytest.mark.parametrize(
    "kind, case, needle",
    [
        ("splat", "truncated", "truncated"),
        ("splat", "huge", "over the cap"),
        ("splat", "faces", "so it is a mesh"),
        ("splat", "points", "not a Gaussian splat PLY"),
        ("splat", "nan", "NaN or Inf"),
        ("splat", "garbage", "not a PLY file"),
        ("points", "neither", "neither a Gaussian splat nor a point cloud"),
        ("points", "huge", "over the cap"),
        ("points", "garbage", "not a PLY file"),
    ],
)
def test_bad_splat_and_point_files_fail_with_one_line(tmp_path, capsys, kind, case, needle):
    path = tmp_path / "s.ply"
    cols = splat_columns(20)
    if case == "truncated":
        write_ply(path, cols, declared=21)
    elif case == "huge":
        write_ply(path, cols, declared=10**12)
    elif case == "faces":
        write_ply(path, cols, faces=3)
    elif case == "points":
        write_ply(path, {k: cols[k] for k in "xyz"})
    elif case == "neither":
        write_ply(path, {"red": cols["x"], "green": cols["y"]})
    elif case == "nan":
        cols["opacity"][3] = np.nan
        write_ply(path, cols)
    else:
        path.write_bytes(b"\x00garbage" * 20)
    assert needle in one_error_line(capsys, "import", kind, path, "--out", tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()


def test_point_clouds_from_text_and_ply(tmp_path):
    rng = np.random.default_rng(0)
    xyz = rng.normal(size=(200, 3))
    rgb = rng.integers(0, 256, (200, 3))
    np.savetxt(tmp_path / "p.xyz", np.concatenate([xyz, rgb], 1))
    write_ply(tmp_path / "p.ply", {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
    text, frame = read_points(tmp_path / "p.xyz", up="z")
    ply, _ = read_points(tmp_path / "p.ply", up="z")
    assert torch.allclose(text.means, ply.means, atol=1e-5)
    assert torch.allclose(text.colors, torch.tensor(rgb / 255.0).float(), atol=1e-6)
    assert torch.allclose(ply.colors, torch.full((200, 3), 0.7))
    assert (text.covariances[:, 0, 0] > 0).all() and frame.scale > 0
    (tmp_path / "bad.xyz").write_text("1 2\n3 4\n")
    with pytest.raises(FileFormatError, match="rows of 2 values"):
        read_points(tmp_path / "bad.xyz")


def test_import_splat_and_points_build_zoos(capsys, tmp_path, tiny_fit, monkeypatch):
    import json

    import nerfspace.zoo as zoo_pkg
    from nerfspace.cli import main
    from nerfspace.shapes import make_object
    from nerfspace.shapes.scan import disc_splats, scan
    from nerfspace.shapes.splat_files import write_points, write_splats
    from nerfspace.zoo import load_nerf

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    s = scan(make_object("lamp", 0), seed=0, scanners=3, resolution=32)
    (tmp_path / "splats" / "mugs").mkdir(parents=True)
    (tmp_path / "points" / "mugs").mkdir(parents=True)
    write_splats(tmp_path / "splats" / "mugs" / "m.ply", **{k: v.numpy() for k, v in disc_splats(s).items()})
    write_points(tmp_path / "points" / "mugs" / "m.ply", s.points.numpy(), s.colors.numpy())
    for kind in ("splat", "points"):
        out = tmp_path / f"{kind}_zoo"
        args = ["import", kind, str(tmp_path / f"{kind}s" if kind == "splat" else tmp_path / kind)]
        code = main([*args, "--out", str(out), "--archs", "mlp", "--up", "z", "--keep-frame", "--json"])
        info = json.loads(capsys.readouterr().out)
        assert code == 0 and info["nerfs"] == 1 and info["categories"] == {"mugs": 1}
        source = json.loads(load_nerf(out / "nerfs" / "mlp" / "m.safetensors").meta["source"])
        assert source["kind"] == kind and source["scale"] == 1.0
    # a splat file given to the point-cloud importer is read as its points; a point cloud is no splat
    err = one_error_line(capsys, "import", "splat", tmp_path / "points", "--out", tmp_path / "x")
    assert "not a Gaussian splat PLY" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_elements_before_the_vertices_are_skipped(tmp_path, fmt):
    xyz = np.random.default_rng(1).normal(size=(30, 3)).astype("<f4")
    header = [
        "ply", f"format {fmt} 1.0", "element camera 2", "property float focal", "property uchar id",
        "element vertex 30", "property float x", "property float y", "property float z", "end_header",
    ]  # fmt: skip
    head = ("\n".join(header) + "\n").encode()
    if fmt == "ascii":
        body = "1.5 3\n2.5 4\n" + "\n".join(" ".join(f"{v:.6f}" for v in row) for row in xyz) + "\n"
        (tmp_path / "p.ply").write_bytes(head + body.encode())
    else:
        camera = np.array([(1.5, 3), (2.5, 4)], dtype=[("focal", "<f4"), ("id", "u1")]).tobytes()
        (tmp_path / "p.ply").write_bytes(head + camera + xyz.tobytes())
    columns = read_ply_vertices(tmp_path / "p.ply")
    assert np.allclose(np.stack([columns[k] for k in "xyz"], 1), xyz, atol=1e-5)


def test_a_splat_field_takes_out_what_its_opacity_says():
    flat = Splats.from_scales(
        torch.tensor([[0.1, 0.0, 0.0], [-0.3, 0.2, 0.0]]),
        torch.tensor([[0.1, 0.1, 0.01], [0.02, 0.02, 0.02]]),
        torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]),
        torch.tensor([0.7, 0.5]),
        torch.tensor([[0.2, 0.4, 0.6], [0.9, 0.1, 0.1]]),
    )
    query = flat.radiance_field()
    z = torch.linspace(-0.1, 0.1, 2001)
    rgb, sigma = query(torch.stack([torch.full_like(z, 0.1), torch.zeros_like(z), z], -1))
    optical_depth = torch.trapezoid(sigma, z)
    assert optical_depth == pytest.approx(-math.log(1 - 0.7), rel=1e-3)
    assert torch.allclose(rgb[1000], torch.tensor([0.2, 0.4, 0.6]), atol=1e-5)
    far_rgb, far_sigma = query(torch.tensor([[0.6, 0.6, 0.6]]))
    assert far_sigma[0] == 0 and torch.equal(far_rgb[0], torch.zeros(3))


def test_import_into_one_nerf_file(capsys, tmp_path, tiny_fit, monkeypatch):
    import json

    import nerfspace.zoo as zoo_pkg
    from helpers import run
    from nerfspace.zoo import load_nerf

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "scan.xyz", rng.normal(size=(300, 3)) * [0.5, 0.2, 0.1])
    target = tmp_path / "scan.safetensors"
    code, out, _ = run(
        capsys, "import", "points", tmp_path / "scan.xyz", "--out", target, "--archs", "hash", "--json"
    )
    assert code == 0 and json.loads(out)["preset"] == "hash" and load_nerf(target).spec.family == "hash"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.safetensors", "scan.xyz"]  # no temp left
    again = ["import", "points", tmp_path / "scan.xyz", "--out", target, "--archs", "hash"]
    assert "exists" in one_error_line(capsys, *again)
    assert "one input and one architecture" in one_error_line(
        capsys, "import", "points", tmp_path / "scan.xyz", "--out", tmp_path / "two.safetensors"
    )  # the default architectures are the three seen ones
    assert "lies inside an input" in one_error_line(
        capsys, "import", "points", tmp_path, "--out", tmp_path / "zoo"
    )
