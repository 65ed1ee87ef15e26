"""Importers and exporters: the paper's dataset layout, state dicts, declared specs, safe loading.

Fixtures are written here in the exact public layout; the imported fields are checked against an
independent forward pass that reads the flat tiny-cuda-nn vectors by hand."""

import json
import math
from pathlib import Path

import pytest
import torch

from nerfspace import fields
from nerfspace.archs import ArchSpec, get_preset, load_spec, parse_archs
from nerfspace.cli import main
from nerfspace.encoders.gmn import GMN, GMNConfig
from nerfspace.errors import InputError
from nerfspace.graphs import graph_size, nerf_to_graph
from nerfspace.interop import read_gmnerf_nerf
from nerfspace.interop.occupancy import resample
from nerfspace.zoo import NeRF, ZooConfig, build_zoo, load_manifest, load_nerf, save_nerf

CHAIR, CAR = "03001627", "02958343"
# a hash spec whose coarse level is dense (5^3 <= 2^8) and finer levels hashed, input 4 padded to 16
SMALL_HASH = ArchSpec(
    "hash", hash_levels=3, hash_log2_size=8, hash_features=2, hash_base_res=4, hash_max_res=16,
    hidden_layers=2, width=8, in_multiple=16,
)  # fmt: skip
SMALL_TRIPLANE = ArchSpec("triplane", n_freqs=2, plane_res=5, plane_features=3, width=8, activation="sine")
SMALL_MLP = ArchSpec("mlp", n_freqs=3, hidden_layers=2, width=8)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the public layout, written and read by hand --------------------------------------------------
def gmnerf_weights(spec: ArchSpec, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors of a ``nerf_weights.pth``: flat MLP, flat hash tables, tri-plane (float16 MLP, as
    tiny-cuda-nn stores it)."""
    n_mlp = sum(o * i for o, i in spec.layer_shapes)
    w = {"mlp_base.params": (torch.randn(n_mlp, generator=gen) * 0.25).half()}
    if spec.family == "hash":
        n = sum(spec.hash_table_sizes) * spec.hash_features
        w["encoding.params"] = torch.rand(n, generator=gen) * 2 - 1
    if spec.family == "triplane":
        w["triplane"] = torch.randn(3, spec.plane_res, spec.plane_res, spec.plane_features, generator=gen)
    return w


def hand_forward(spec: ArchSpec, w: dict[str, torch.Tensor], x: torch.Tensor):
    """RGB and density at world points ``x`` [P, 3] from the raw file tensors, point by point."""
    rgb, sigma = [], []
    for p in ((x.double() + 0.7) / 1.4).tolist():
        h = []
        if spec.family == "triplane":
            planes = w["triplane"].double()
            r = planes.shape[1]
            acc = torch.zeros(planes.shape[-1], dtype=torch.float64)
            for k, (a, b) in enumerate(((0, 1), (0, 2), (1, 2))):
                u, v = p[a] * (r - 1), p[b] * (r - 1)
                i, j = min(int(u), r - 2), min(int(v), r - 2)
                fu, fv = u - i, v - j
                pl = planes[k]
                acc += (1 - fu) * (1 - fv) * pl[i, j] + fu * (1 - fv) * pl[i + 1, j]
                acc += (1 - fu) * fv * pl[i, j + 1] + fu * fv * pl[i + 1, j + 1]
            h += acc.tolist()
        if spec.family == "hash":
            flat, off, nf = w["encoding.params"].double(), 0, spec.hash_features
            growth = math.exp2(math.log2(spec.hash_max_res / spec.hash_base_res) / (spec.hash_levels - 1))
            for lvl in range(spec.hash_levels):
                scale = spec.hash_base_res * growth**lvl - 1
                res = math.ceil(scale) + 1
                size = min(-(-(res**3) // 8) * 8, 2**spec.hash_log2_size)
                pos = [c * scale + 0.5 for c in p]
                g = [math.floor(c) for c in pos]
                feat = [0.0] * nf
                for corner in range(8):
                    bits = [(corner >> d) & 1 for d in range(3)]
                    wt = math.prod(pos[d] - g[d] if bits[d] else 1 - (pos[d] - g[d]) for d in range(3))
                    gx, gy, gz = (g[d] + bits[d] for d in range(3))
                    if res**3 <= size:
                        idx = gx + gy * res + gz * res * res
                    else:
                        idx = (gx ^ (gy * 2654435761) ^ (gz * 805459861)) & 0xFFFFFFFF
                    e = off + (idx % size) * nf
                    feat = [f + wt * float(flat[e + c]) for c, f in enumerate(feat)]
                h += feat
                off += size * nf
        for d in range(3):
            for i in range(spec.n_freqs):
                h += [math.sin(2**i * math.pi * p[d]), math.cos(2**i * math.pi * p[d])]
        act = torch.tensor(h + [0.0] * (spec.mlp_in - len(h)), dtype=torch.float64)
        flat, off = w["mlp_base.params"].double(), 0
        dims = spec.neurons
        for layer in range(len(dims) - 1):
            n_out, n_in = dims[layer + 1], dims[layer]
            act = flat[off : off + n_out * n_in].reshape(n_out, n_in) @ act  # row-major (out, in)
            off += n_out * n_in
            if layer < len(dims) - 2:
                act = torch.relu(act) if spec.activation == "relu" else torch.sin(act)
        rgb.append(torch.sigmoid(act[:3]))
        sigma.append(torch.exp(act[3] - 1))
    return torch.stack(rgb).float(), torch.stack(sigma).float()


def write_dataset(root: Path, archs: dict[str, ArchSpec | None], objects: dict[str, str], grid_res=12):
    """The public layout: ``root/<arch>/<class_id>/<nerf_id>/{nerf_weights.pth, grid.pth}`` for every
    ``class_id/nerf_id`` of ``objects`` (→ split), split files, ``spec.json`` where a spec is given.
    Returns the raw weights by (arch, key)."""
    gen, raw = torch.Generator().manual_seed(0), {}
    for arch, declared in archs.items():
        spec = declared or get_preset(arch, "paper")
        if declared:
            (root / arch).mkdir(parents=True)
            (root / arch / "spec.json").write_text(declared.to_json())
        for key in objects:
            folder = root / arch / key
            folder.mkdir(parents=True)
            raw[arch, key] = gmnerf_weights(spec, gen)
            torch.save(raw[arch, key], folder / "nerf_weights.pth")
            grid = torch.rand(grid_res, grid_res, grid_res, generator=gen) > 0.7
            torch.save(grid.to_sparse(), folder / "grid.pth")
    for split in ("train", "val", "test"):
        lines = [k for k, s in objects.items() if s == split]
        (root / f"{split}.txt").write_text("".join(f"{k}\n" for k in lines))
    return raw


def points(n=24, seed=1):
    return (torch.rand(n, 3, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * 0.69


# ---- 1. the paper's dataset ------------------------------------------------------------------------
def test_gmnerf_import_matches_the_flat_parameters(tmp_path, capsys):
    objects = {f"{CHAIR}/aa01": "train", f"{CAR}/bb02": "test", f"{CHAIR}/cc03": "val"}
    archs = {"hash": None, "small_tp": SMALL_TRIPLANE, "small_hash": SMALL_HASH, "small_mlp": SMALL_MLP}
    raw = write_dataset(tmp_path / "src", archs, objects)
    (tmp_path / "src" / "hash" / CAR / "zz99").mkdir()  # a NeRF of an object in no split file
    torch.save(raw["hash", f"{CAR}/bb02"], tmp_path / "src" / "hash" / CAR / "zz99" / "nerf_weights.pth")

    code, out, err = run(capsys, "import", "gmnerf", tmp_path / "src", tmp_path / "zoo", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["nerfs"] == 12 and info["objects"] == 3 and info["skipped_unlisted"] == 1
    assert info["splits"] == {"train": 1, "val": 1, "test": 1} and info["categories"] == {
        "chair": 2,
        "car": 1,
    }
    manifest = load_manifest(tmp_path / "zoo")
    assert manifest["config"]["specs"]["small_tp"] == SMALL_TRIPLANE.to_dict()

    x = points()
    for (arch, key), w in raw.items():
        oid = {"03001627": "chair", "02958343": "car"}[key[:8]] + "_" + key[9:]
        nerf = load_nerf(tmp_path / "zoo" / "nerfs" / arch / f"{oid}.safetensors")
        assert nerf.meta["split"] == objects[key] and nerf.occupancy.shape == (12, 12, 12)
        grid = torch.load(tmp_path / "src" / arch / key / "grid.pth", weights_only=True).to_dense()
        assert torch.equal(nerf.occupancy, grid)
        rgb, sigma = fields.query(nerf.spec, nerf.batched(), x[None])
        want_rgb, want_sigma = hand_forward(nerf.spec, w, x)
        torch.testing.assert_close(rgb[0], want_rgb, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(sigma[0], want_sigma, rtol=5e-4, atol=1e-5)

    # a rerun resumes (nothing to redo), unless another import of the folder still runs
    from nerfspace.locks import folder_lock

    with folder_lock(tmp_path / "zoo"):
        code, _, err = run(capsys, "import", "gmnerf", tmp_path / "src", tmp_path / "zoo")
        assert code == 2 and "in use by another nerfspace process" in err
    assert run(capsys, "import", "gmnerf", tmp_path / "src", tmp_path / "zoo")[0] == 0
    # a source that changed since is imported again; the others are left as they are
    imported = {p: p.read_bytes() for p in (tmp_path / "zoo" / "nerfs").rglob("*.safetensors")}
    changed = tmp_path / "zoo" / "nerfs" / "hash" / "chair_aa01.safetensors"
    weights = tmp_path / "src" / "hash" / f"{CHAIR}/aa01" / "nerf_weights.pth"
    torch.save(raw["hash", f"{CAR}/bb02"], weights)
    assert run(capsys, "import", "gmnerf", tmp_path / "src", tmp_path / "zoo")[0] == 0
    assert all(p.read_bytes() == b for p, b in imported.items() if p != changed)
    again = load_nerf(changed)
    rgb, sigma = fields.query(again.spec, again.batched(), x[None])
    torch.testing.assert_close(
        sigma[0], hand_forward(again.spec, raw["hash", f"{CAR}/bb02"], x)[1], rtol=5e-4, atol=1e-5
    )
    # the pipeline's graph and encoder take the imported NeRFs
    enc = GMN(GMNConfig(hidden=16, blocks=1, width=8)).eval()
    for arch in ("hash", "small_tp", "small_mlp"):
        nerf = load_nerf(tmp_path / "zoo" / "nerfs" / arch / "car_bb02.safetensors")
        graph = nerf_to_graph(nerf.spec, nerf.params, nerf.occupancy)
        assert (graph.num_nodes, graph.num_edges) == graph_size(nerf.spec)
        with torch.no_grad():
            emb = enc(graph)
        assert emb.shape == (1, 8) and torch.isfinite(emb).all()


def test_paper_presets_have_the_tiny_cuda_nn_sizes():
    # flat lengths of the public files: mlp 144 -> 64 x3 -> 16, triplane 304 in, hash 8 features padded to 16
    assert get_preset("mlp", "paper").layer_shapes[0] == (64, 144)
    assert get_preset("triplane", "paper").layer_shapes[0] == (64, 304)
    h = get_preset("hash", "paper")
    assert h.layer_shapes[0] == (64, 16) and h.layer_shapes[-1] == (16, 64) and h.spatial_dim == 8
    assert sum(h.hash_table_sizes) == 16 * 16 * 16 + 3 * 4096  # level 0 dense 16^3, then 2^12 each


def test_gmnerf_import_errors_name_the_file(tmp_path, capsys):
    src = tmp_path / "src"
    write_dataset(src, {"small_mlp": SMALL_MLP}, {f"{CHAIR}/aa01": "train"})
    bad = src / "small_mlp" / CHAIR / "aa01" / "nerf_weights.pth"
    torch.save({"mlp_base.params": torch.zeros(10)}, bad)
    code, _, err = run(capsys, "import", "gmnerf", src, tmp_path / "zoo")
    assert code == 2 and "nerf_weights.pth" in err and "'mlp_base.params' holds (10,) values" in err
    (src / "small_mlp" / "12345678").mkdir()
    code, _, err = run(capsys, "import", "gmnerf", src, tmp_path / "zoo2")
    assert code == 2 and "unknown class id '12345678'" in err
    (src / "small_mlp" / "12345678").rmdir()
    (src / "small_mlp" / CHAIR / "aa01" / "grid.pth").unlink()
    torch.save({"mlp_base.params": torch.zeros(sum(o * i for o, i in SMALL_MLP.layer_shapes))}, bad)
    code, _, err = run(capsys, "import", "gmnerf", src, tmp_path / "zoo3")
    assert code == 2 and "missing occupancy grid grid.pth" in err


def test_occupancy_resampling_is_conservative():
    occ = torch.zeros(96, 96, 96, dtype=torch.bool)
    occ[0, 0, 0] = occ[50, 95, 3] = True
    small = resample(occ, 32)
    assert small.sum() == 2 and small[0, 0, 0] and small[16, 31, 1]
    odd = resample(occ, 40)  # source cell 50 spans [20.8, 21.25) of 40 cells: both cells 20 and 21
    assert odd.nonzero().tolist() == [[0, 0, 0], [20, 39, 1], [21, 39, 1]]
    assert torch.equal(resample(occ, 96), occ)


# ---- 2. declared architectures, state dicts ---------------------------------------------------------
def test_declared_spec_builds_a_zoo(tmp_path, tiny_fit):
    spec_file = tmp_path / "tiny_relu.json"
    spec_file.write_text(SMALL_MLP.to_json())
    names, declared = parse_archs(f"mlp,{spec_file}")
    assert names == ["mlp", "tiny_relu"] and declared == {"tiny_relu": SMALL_MLP}
    cfg = ZooConfig(("lamp",), 1, tuple(names), declared=tuple(declared.items()))
    manifest = build_zoo(tmp_path / "zoo", cfg, fit_cfg=tiny_fit)
    assert manifest["config"]["declared"] == {"tiny_relu": SMALL_MLP.to_dict()}
    assert [n["preset"] for n in manifest["nerfs"]] == ["mlp", "tiny_relu"]
    nerf = load_nerf(tmp_path / "zoo" / "nerfs" / "tiny_relu" / "lamp_0000.safetensors")
    assert nerf.spec == SMALL_MLP and nerf.preset == "custom" and nerf.meta["preset"] == "tiny_relu"
    assert "declared" not in ZooConfig(("lamp",), 1, ("mlp",)).to_dict()  # preset zoos keep their manifest
    with pytest.raises(InputError, match="not a preset name"):
        parse_archs(str(tmp_path / "mlp.json"))


def nerf_of(spec: ArchSpec, seed=0, res=8) -> NeRF:
    gen = torch.Generator().manual_seed(seed)
    params = {
        n: t[0] + 0.01 * torch.randn(t.shape[1:], generator=gen)
        for n, t in fields.init_params(spec, 1, gen).items()
    }
    return NeRF(spec, params, torch.rand(res, res, res, generator=gen) > 0.5, {"category": "car"})


def test_torch_state_dict_import_and_shape_errors(tmp_path, capsys):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(SMALL_TRIPLANE.to_json())
    nerf = nerf_of(SMALL_TRIPLANE)
    sd = {n: t.double() for n, t in nerf.params.items()}  # float64 is accepted and converted
    torch.save(sd, tmp_path / "sd.pt")
    code, _, err = run(
        capsys, "import", "torch", tmp_path / "sd.pt", "--spec", spec_file, tmp_path / "n.safetensors"
    )
    assert code == 0, err
    back = load_nerf(tmp_path / "n.safetensors")
    assert back.spec == SMALL_TRIPLANE and all(torch.equal(back.params[n], t) for n, t in nerf.params.items())
    assert back.occupancy.shape == (32, 32, 32)  # no grid in the file: derived from the field

    sd["mlp.1.weight"] = torch.zeros(8, 9)
    sd["mlp.2.weight"] = torch.zeros(3, 3)
    torch.save(sd, tmp_path / "bad.pt")
    code, _, err = run(
        capsys, "import", "torch", tmp_path / "bad.pt", "--spec", spec_file, tmp_path / "b.safetensors"
    )
    assert code == 2 and "bad.pt" in err and "'mlp.1.weight' has shape (8, 9), the spec needs (8, 8)" in err
    del sd["mlp.1.weight"]
    torch.save(sd, tmp_path / "bad.pt")
    code, _, err = run(
        capsys, "import", "torch", tmp_path / "bad.pt", "--spec", spec_file, tmp_path / "b.safetensors"
    )
    assert code == 2 and "missing ['mlp.1.weight']" in err


# ---- 3. export round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [SMALL_HASH, SMALL_TRIPLANE, SMALL_MLP, get_preset("hash")],
    ids=["hash", "triplane", "mlp", "hash_preset"],
)
def test_export_round_trips_exactly(tmp_path, capsys, spec):
    nerf = nerf_of(spec)
    save_nerf(tmp_path / "n.safetensors", nerf)
    code, _, err = run(capsys, "export", tmp_path / "n.safetensors", "--format", "torch", tmp_path / "n.pt")
    assert code == 0, err
    code, _, err = run(
        capsys,
        "import",
        "torch",
        tmp_path / "n.pt",
        "--spec",
        tmp_path / "n.spec.json",
        tmp_path / "t.safetensors",
    )
    assert code == 0, err
    assert run(capsys, "export", tmp_path / "n.safetensors", "--format", "gmnerf", tmp_path / "g")[0] == 0
    for back in (
        load_nerf(tmp_path / "t.safetensors"),
        read_gmnerf_nerf(tmp_path / "g", load_spec(tmp_path / "g" / "spec.json")),
    ):
        assert back.spec == nerf.spec and torch.equal(back.occupancy, nerf.occupancy)
        assert back.params.keys() == nerf.params.keys()
        assert all(torch.equal(back.params[n], t) for n, t in nerf.params.items())
    code, _, err = run(capsys, "export", tmp_path / "n.safetensors", "--format", "onnx", tmp_path / "x")
    assert code == 2 and "unknown --format" in err


# ---- 4. safe loading -----------------------------------------------------------------------------------
class Payload:
    """Unpickling this creates a marker file: the code a hostile .pth would run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_that_runs_code_is_refused(tmp_path, capsys):
    armed = tmp_path / "armed.pt"
    torch.save({"x": Payload(tmp_path / "proof")}, armed)
    torch.load(armed, weights_only=False)  # the payload is live: loading it unsafely runs it
    assert (tmp_path / "proof").exists()

    marker = tmp_path / "pwned"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(SMALL_MLP.to_json())
    evil = tmp_path / "evil.pt"
    torch.save({"mlp.0.weight": Payload(marker)}, evil)
    code, _, err = run(capsys, "import", "torch", evil, "--spec", spec_file, tmp_path / "n.safetensors")
    assert code == 2 and "refused" in err and "evil.pt" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "n.safetensors").exists()

    src = tmp_path / "src"
    write_dataset(src, {"small_mlp": SMALL_MLP}, {f"{CHAIR}/aa01": "test"})
    for name in ("nerf_weights.pth", "grid.pth"):
        target = src / "small_mlp" / CHAIR / "aa01" / name
        good = target.read_bytes()
        torch.save(Payload(marker), target)
        code, _, err = run(capsys, "import", "gmnerf", src, tmp_path / f"zoo_{name}")
        assert code == 2 and "refused" in err and name in err and not marker.exists()
        target.write_bytes(good)


def test_unreadable_torch_files_are_one_line_errors(tmp_path, capsys):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(SMALL_MLP.to_json())
    torch.save({n: t for n, t in nerf_of(SMALL_MLP).params.items()}, tmp_path / "ok.pt")
    data = (tmp_path / "ok.pt").read_bytes()
    for name, content in (
        ("empty.pt", b""),
        ("junk.pt", b"not a pickle"),
        ("trunc.pt", data[: len(data) // 2]),
    ):
        (tmp_path / name).write_bytes(content)
        code, _, err = run(
            capsys, "import", "torch", tmp_path / name, "--spec", spec_file, tmp_path / "n.safetensors"
        )
        assert code == 2 and name in err and "not a readable PyTorch file" in err, err
    torch.save([1, 2], tmp_path / "list.pt")
    code, _, err = run(
        capsys, "import", "torch", tmp_path / "list.pt", "--spec", spec_file, tmp_path / "n.safetensors"
    )
    assert code == 2 and "expected a dict of named tensors" in err
