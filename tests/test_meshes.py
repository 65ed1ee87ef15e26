import json

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from helpers import one_error_line, run
from nerfspace.errors import InputError, UnsafeFileError, ZooError
from nerfspace.frames import Similarity
from nerfspace.render import Cameras, camera_rays, orbit_cameras, project
from nerfspace.shapes.mesh import _intersect, _nearest_hits
from nerfspace.shapes.mesh_files import read_mesh
from nerfspace.shapes.shading import AMBIENT, DIFFUSE
from nerfspace.zoo import load_nerf
from nerfspace.zoo.sources import file_sources


def textured_quad(path, image: np.ndarray) -> None:
    """A unit square in the xy plane facing +z, UV (0,0) at its (-x,-y) corner, textured with ``image``."""
    v = np.array([[-0.5, -0.5, 0.0], [0.5, -0.5, 0.0], [0.5, 0.5, 0.0], [-0.5, 0.5, 0.0]])
    quad = trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)
    quad.visual = trimesh.visual.TextureVisuals(uv=v[:, :2] + 0.5, image=Image.fromarray(image))
    quad.export(path)


def test_binned_hits_equal_brute_force():
    mesh = trimesh.creation.icosphere(1, radius=0.5)
    obj, _ = read_mesh_of(mesh)
    cams = orbit_cameras(2, 24)
    origins, dirs = camera_rays(cams)
    rows, cols, depths = project(cams, obj.vertices)
    tri = obj.vertices[obj.faces]
    for i in range(2):
        o, d = origins[i].reshape(-1, 3), dirs[i].reshape(-1, 3)
        pix, face, bary = _nearest_hits(tri, *(x[obj.faces] for x in (rows[i], cols[i], depths[i])), o, d, 24)
        pairs = torch.cartesian_prod(torch.arange(len(tri)), torch.arange(24 * 24))
        bp, bf, bt, _ = _intersect(tri, pairs[:, 0], pairs[:, 1], o, d)
        best = {}
        for p, f, t in zip(bp.tolist(), bf.tolist(), bt.tolist(), strict=True):
            if p not in best or (t, f) < best[p]:
                best[p] = (t, f)
        assert sorted(pix.tolist()) == sorted(best)
        assert all(best[p][1] == f for p, f in zip(pix.tolist(), face.tolist(), strict=True))
        hit = o[pix] + d[pix] * torch.tensor([best[p][0] for p in pix.tolist()])[:, None]
        assert torch.allclose((bary[..., None] * tri[face]).sum(1), hit, atol=1e-4)


def read_mesh_of(mesh, tmp=None, suffix=".ply", up="z"):
    import tempfile
    from pathlib import Path

    folder = Path(tmp or tempfile.mkdtemp())
    path = folder / f"m{suffix}"
    mesh.export(path)
    return read_mesh(path, up)


def test_texture_orientation_and_shading(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)  # quadrants: red, green / blue, white
    image[:4, :4], image[:4, 4:], image[4:, :4], image[4:, 4:] = [255, 0, 0], [0, 255, 0], [0, 0, 255], 255
    textured_quad(tmp_path / "q.obj", image)
    obj, frame = read_mesh(tmp_path / "q.obj", up="z")
    assert frame.scale == pytest.approx(1.0) and np.allclose(frame.center, 0)
    light = torch.tensor([0.0, 0.0, 1.0])
    above = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 2]]])  # at z = 2, looking down, +y up
    img = obj.posed(Similarity.identity(), light).render(Cameras(above, focal=40.0, size=32))[0]
    shade = AMBIENT + DIFFUSE
    # seen from +z with +y up in the image: image row 0 of the texture (v = 1) is the quad's top
    top_left, top_right = img[10, 10], img[10, 21]
    bottom_left, bottom_right = img[21, 10], img[21, 21]
    assert torch.allclose(top_left, torch.tensor([1.0, 0, 0]) * shade, atol=0.01)
    assert torch.allclose(top_right, torch.tensor([0, 1.0, 0]) * shade, atol=0.01)
    assert torch.allclose(bottom_left, torch.tensor([0, 0, 1.0]) * shade, atol=0.01)
    assert torch.allclose(bottom_right, torch.ones(3) * shade, atol=0.01)
    assert torch.equal(img[0, 0], torch.ones(3))  # background


def test_normalisation_and_up_axis(tmp_path):
    box = trimesh.creation.box((0.2, 2.0, 0.5))
    box.apply_translation([3.0, 1.0, -2.0])
    obj, frame = read_mesh_of(box, tmp_path, up="y")
    extent = obj.vertices.amax(0) - obj.vertices.amin(0)
    assert torch.allclose(extent, torch.tensor([0.1, 0.25, 1.0]), atol=1e-5)  # y (tall) is now z
    assert torch.allclose(obj.vertices.amax(0) + obj.vertices.amin(0), torch.zeros(3), atol=1e-5)
    rot = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    original = obj.vertices @ rot / frame.scale + torch.tensor(frame.center)  # the frame undone
    assert torch.allclose(original, torch.from_numpy(box.vertices).float(), atol=1e-5)


def test_mesh_files_referencing_outside_or_missing_textures(tmp_path):
    scene = tmp_path / "scene"
    scene.mkdir()
    textured_quad(scene / "q.obj", np.full((4, 4, 3), 128, np.uint8))
    mtl = next(scene.glob("*.mtl"))
    text = mtl.read_text()
    png = next(scene.glob("*.png")).name
    mtl.write_text(text.replace(png, "../secret.png"))
    with pytest.raises(UnsafeFileError, match="outside its folder"):
        read_mesh(scene / "q.obj")
    mtl.write_text(text.replace(png, "gone.png"))
    with pytest.raises(InputError, match="texture 'gone.png' is missing"):
        read_mesh(scene / "q.obj")


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "not a readable mesh"),
        (b"\x00\x01garbage" * 10, "not a readable mesh"),
        ("points", "no triangle faces"),
        ("nan", "NaN or Inf"),
        ("flat", "no extent"),
    ],
)
def test_bad_meshes_fail_with_one_line_and_write_nothing(capsys, tmp_path, content, needle):
    path = tmp_path / "bad.ply"
    if content == "points":
        trimesh.PointCloud(np.random.default_rng(0).random((10, 3))).export(path)
    elif content == "nan":
        m = trimesh.creation.box()
        m.vertices[0, 0] = np.nan
        m.export(path)
    elif content == "flat":
        trimesh.Trimesh(np.zeros((3, 3)), [[0, 1, 2]], process=False).export(path)
    else:
        path.write_bytes(content)
    out_dir = tmp_path / "zoo"
    assert needle in one_error_line(capsys, "fit", "mesh", path, "--out", out_dir)
    assert not out_dir.exists()


def test_labels_csv_must_name_every_mesh(tmp_path):
    for name in ("a", "b"):
        trimesh.creation.box().export(tmp_path / f"{name}.stl")
    (tmp_path / "labels.csv").write_text("file,label\na.stl,crate\n")
    with pytest.raises(InputError, match="no label for 1 file"):
        file_sources([tmp_path], "mesh", tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("file,label\na.stl,crate\nb.stl,crate\nc.stl,crate\n")
    with pytest.raises(InputError, match="1 file\\(s\\) not in the files given: c.stl"):
        file_sources([tmp_path], "mesh", tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("file,label\na.stl,crate\nb.stl,box\n")
    assert [s.category for s in file_sources([tmp_path], "mesh", tmp_path / "labels.csv")] == ["crate", "box"]


def test_fit_mesh_builds_a_zoo_and_refuses_a_changed_mesh(capsys, tmp_path, tiny_fit, monkeypatch):
    import nerfspace.zoo as zoo_pkg

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    src = tmp_path / "meshes"
    (src / "crates").mkdir(parents=True)
    (src / "balls").mkdir()
    box = trimesh.creation.box((1.0, 0.5, 0.5))
    box.visual.face_colors = [200, 40, 40, 255]
    box.export(src / "crates" / "c1.ply")
    trimesh.creation.icosphere(1).export(src / "balls" / "b1.glb")
    out_dir = tmp_path / "zoo"
    code, out, _ = run(capsys, "fit", "mesh", str(src), "--out", str(out_dir), "--archs", "mlp", "--json")
    info = json.loads(out)
    assert code == 0 and info["nerfs"] == 2 and info["complete"]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert {o["id"]: o["category"] for o in manifest["objects"]} == {"b1": "balls", "c1": "crates"}
    nerf = load_nerf(out_dir / "nerfs" / "mlp" / "c1.safetensors")
    recorded = json.loads(nerf.meta["source"])
    assert recorded["file"] == str((src / "crates" / "c1.ply").resolve()) and recorded["up"] == "y"
    assert recorded["kind"] == "mesh"
    assert nerf.meta["category"] == "crates"
    # the gallery is searched whatever its categories (the shipped encoder reads any architecture)
    from nerfspace.demo import shipped

    encoder = str(shipped()[0].encoder)
    query = str(out_dir / "nerfs" / "mlp" / "c1.safetensors")
    code, out, _ = run(
        capsys, "retrieve", encoder, "--query", query, "--gallery", str(out_dir), "-k", "2", "--json"
    )
    hits = json.loads(out)
    assert code == 0 and [h["category"] for h in hits] == ["crates", "balls"] and hits[0]["object"] == "c1"
    # a changed mesh is refused when a build resumes
    (out_dir / "nerfs" / "mlp" / "c1.safetensors").unlink()
    box.visual.face_colors = [40, 200, 40, 255]
    box.export(src / "crates" / "c1.ply")
    code, _, err = run(capsys, "fit", "mesh", str(src), "--out", str(out_dir), "--archs", "mlp")
    assert code == 2 and "other settings" in err


def test_a_changed_mesh_is_refused_inside_a_build(tmp_path):
    from nerfspace.zoo.sources import source_object

    trimesh.creation.box().export(tmp_path / "a.stl")
    src = file_sources([tmp_path / "a.stl"])[0]
    entry = {
        "id": "a",
        "source": src.path,
        "kind": "mesh",
        "digest": src.digest,
        "frame": src.frame.to_dict(),
    }
    assert len(source_object(entry).faces) == 12
    trimesh.creation.icosphere(1).export(tmp_path / "a.stl")
    with pytest.raises(ZooError, match="changed since"):
        source_object(entry)


def test_meshes_in_independent_captures(capsys, tmp_path, tiny_fit, monkeypatch):
    import nerfspace.zoo as zoo_pkg

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    trimesh.creation.box((1.0, 0.4, 0.4)).export(tmp_path / "bar.stl")
    out_dir = tmp_path / "zoo"
    args = [
        "fit",
        "mesh",
        tmp_path / "bar.stl",
        "--out",
        out_dir,
        "--archs",
        "mlp,hash",
        "--captures",
        "independent",
    ]
    code, _, _ = run(capsys, *args)
    poses = [
        json.loads(load_nerf(out_dir / "nerfs" / p / "bar.safetensors").meta["capture"])
        for p in ("mlp", "hash")
    ]
    assert code == 0 and poses[0]["rotation"] != poses[1]["rotation"]  # each NeRF its own capture


def test_open_and_non_manifold_meshes_fit(capsys, tmp_path, tiny_fit, monkeypatch):
    import nerfspace.zoo as zoo_pkg

    monkeypatch.setattr(zoo_pkg, "fit_config", lambda mode, scale: tiny_fit)
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2], process=False)  # the lid gone
    v = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]]
    fin = trimesh.Trimesh(v, [[0, 1, 2], [0, 1, 3], [0, 1, 4]], process=False)  # one edge, three faces
    assert not open_box.is_watertight and np.bincount(fin.edges_unique_inverse).max() == 3
    open_box.export(tmp_path / "open.ply")
    fin.export(tmp_path / "fin.ply")
    code, out, _ = run(
        capsys,
        "fit",
        "mesh",
        tmp_path / "open.ply",
        tmp_path / "fin.ply",
        "--out",
        tmp_path / "z",
        "--archs",
        "mlp",
        "--json",
    )
    assert code == 0 and json.loads(out)["nerfs"] == 2
