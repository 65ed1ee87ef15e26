"""Your own data -> NeRFs: held-out PSNR of textured meshes and of posed-photo scenes per architecture,
and speed, each comparison run in turns (A B A B) so every ratio is taken pair by pair on one machine:

- end to end: `nerfspace fit mesh` on 6 textured meshes and `nerfspace fit images` on 6 scenes (24 RGBA
  frames of 64 px, anti-aliased, in a world frame of their own) against `nerfspace zoo build` of the 6
  procedural objects the scenes show (the photos: the same shapes; the meshes: other shapes, and the
  time a fit takes grows with the volume an object fills);
- the meshes' shapes: fitting the meshes (read from their files, rendered by the mesh renderer) against
  fitting their exact SDF twins (sphere traced), one spec at a time through `nerfspace.zoo.fit`, so the
  ratio is the cost of the mesh path alone.

python benchmarks/own_data_fit.py [--rounds 2] [--archs seen] [--workers 2] [--twin-rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import trimesh
from PIL import Image

from common import ROOT, save_result
from nerfspace.archs import get_preset, resolve_archs
from nerfspace.render import Cameras, camera_rays, orbit_cameras
from nerfspace.shapes import Assembly, sphere_trace
from nerfspace.shapes.photos import write_scene
from nerfspace.zoo import ZooConfig, fit, fit_config, plan
from nerfspace.zoo.build import planned_object
from nerfspace.zoo.sources import file_sources, source_object

RUNS = ROOT / "runs" / "own_data_fit"
CATEGORIES = ("chair", "car", "lamp", "bench", "sofa", "airplane")  # the zoo build's objects: as many NeRFs
SCENE_WORLD = (3.0, np.array([1.0, -2.0, 0.5]))  # the scenes' world frame: canonical x 3, shifted


def texture(seed: int, size: int = 64) -> Image.Image:
    """A colour texture: a 8x8 checker of two colours with smooth colour waves over it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    a, b = rng.uniform(0.15, 0.9, (2, 3))
    checker = ((x * 8).astype(int) + (y * 8).astype(int)) % 2
    base = np.where(checker[..., None] == 1, a, b)
    wave = 0.1 * np.sin(2 * np.pi * (rng.uniform(1, 3) * x + rng.uniform(1, 3) * y))[..., None]
    return Image.fromarray((np.clip(base + wave, 0, 1) * 255).astype(np.uint8))


def textured_meshes(folder: Path) -> list[Path]:
    """Six textured meshes (trimesh primitives, UVs by a planar projection, so no seams), as GLB and OBJ."""
    shapes = {
        "box": trimesh.creation.box((1.0, 0.7, 0.5)),
        "sphere": trimesh.creation.icosphere(3, 0.5),
        "cylinder": trimesh.creation.cylinder(0.35, 1.0, sections=48),
        "capsule": trimesh.creation.capsule(0.6, 0.3),
        "cone": trimesh.creation.cone(0.5, 0.9, sections=48),
        "torus": trimesh.creation.torus(0.45, 0.15),
    }
    paths = []
    for i, (name, mesh) in enumerate(shapes.items()):
        v = mesh.vertices / np.abs(mesh.vertices).max()
        uv = np.stack([0.5 + 0.35 * v[:, 0] + 0.15 * v[:, 1], 0.5 + 0.5 * v[:, 2]], 1)
        white = trimesh.visual.material.SimpleMaterial(image=texture(i), diffuse=[255, 255, 255, 255])
        mesh.visual = trimesh.visual.TextureVisuals(uv=uv, material=white)  # exported as it is to OBJ and GLB
        path = folder / name / f"{name}.{'glb' if i % 2 else 'obj'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        mesh.export(path)
        paths.append(path)
    return paths


def sdf_twins() -> list:
    """The six shapes of `textured_meshes` as SDF objects, as `fit mesh` normalises them (longest side 1.0,
    centred), in the order of the meshes' sorted paths."""
    shapes = {
        "box": lambda a: a.box((0, 0, 0), (0.5, 0.35, 0.25)),
        "capsule": lambda a: a.capsule((0, 0, -0.25), (0, 0, 0.25), 0.25),  # 0.6 + 2 x 0.3, over 1.2
        "cone": lambda a: a.cone((0, 0, -0.45), (0, 0, 0.45), 0.5, 0.0),
        "cylinder": lambda a: a.cylinder((0, 0, 0), 0.35, 0.5),
        "sphere": lambda a: a.sphere((0, 0, 0), 0.5),
        "torus": lambda a: a.torus((0, 0, 0), 0.375, 0.125),  # 0.45 and 0.15, over 1.2
    }
    twins = []
    for name, add in shapes.items():
        a = Assembly()
        add(a)
        twins.append(a.to_object(name, 0, np.array([[0.6, 0.5, 0.4]]), 0.01))
    return twins


def twin_pairs(meshes: Path, archs: list[str], rounds: int) -> list[dict]:
    """Seconds to fit the meshes (files read, mesh renderer) and their SDF twins, per spec, in turns."""
    cfg = fit_config()
    seeds = list(range(6))
    sources = file_sources([meshes], "mesh", up="z")
    entries = [
        {"id": s.id, "source": s.path, "kind": "mesh", "digest": s.digest, "frame": s.frame.to_dict()}
        for s in sources
    ]
    twins = sdf_twins()
    out = []
    for r in range(rounds):
        for arch in archs:
            spec = get_preset(arch)
            t0 = time.perf_counter()
            fit(spec, [source_object(e) for e in entries], seeds, cfg)
            t1 = time.perf_counter()
            fit(spec, twins, seeds, cfg)
            t2 = time.perf_counter()
            out.append(
                {
                    "arch": arch,
                    "round": r,
                    "mesh_s": t1 - t0,
                    "sdf_s": t2 - t1,
                    "ratio": (t1 - t0) / (t2 - t1),
                }
            )
            print(
                f"{arch}: meshes {t1 - t0:.1f} s, SDF twins {t2 - t1:.1f} s, ratio {out[-1]['ratio']:.2f}",
                flush=True,
            )
    return out


def write_scenes(folder: Path, archs: str) -> None:
    """Scenes of the procedural objects `zoo build --classes CATEGORIES -n 1` fits: 24 RGBA frames of 64 px
    (2x2 supersampled, alpha the covered share), as `fit images` reads them."""
    cfg = fit_config()
    manifest = plan(ZooConfig(CATEGORIES, 1, tuple(resolve_archs(archs))), cfg)
    cams = orbit_cameras(24, cfg.image_size)
    fine = Cameras(cams.c2w, cams.focal * 2, cams.size * 2)
    for entry in manifest["objects"]:
        rgb, alpha = sphere_trace(planned_object(entry), *camera_rays(fine))
        rgba = torch.cat([rgb, alpha[..., None]], -1).permute(0, 3, 1, 2)
        rgba = torch.nn.functional.avg_pool2d(rgba, 2).permute(0, 2, 3, 1)
        write_scene(folder / entry["category"] / entry["id"], rgba, cams, SCENE_WORLD)


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def zoo_psnr(cli: list[str], zoo: Path) -> dict:
    cmd = [*cli, "zoo", "info", str(zoo), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return {p: v["psnr"] for p, v in json.loads(out.stdout)["presets"].items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--archs", default="seen")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--twin-rounds", type=int, default=2)
    args = ap.parse_args()
    shutil.rmtree(RUNS, ignore_errors=True)
    meshes, scenes = RUNS / "meshes", RUNS / "scenes"
    textured_meshes(meshes)
    write_scenes(scenes, args.archs)
    cli = [str(ROOT / ".venv" / "bin" / "nerfspace")]
    common = ["--archs", args.archs, "--workers", str(args.workers)]
    rounds = []
    for i in range(args.rounds):
        mesh_zoo = RUNS / f"mesh_zoo{i}"
        mesh = timed([*cli, "fit", "mesh", str(meshes), "--out", str(mesh_zoo), "--up", "z", *common])
        images = timed([*cli, "fit", "images", str(scenes), "--out", str(RUNS / f"image_zoo{i}"), *common])
        zoo = RUNS / f"zoo{i}"
        base = timed([*cli, "zoo", "build", str(zoo), "--classes", ",".join(CATEGORIES), "-n", "1", *common])
        rounds.append({"fit_mesh_s": mesh, "fit_images_s": images, "zoo_build_s": base})
        print(f"round {i}: fit mesh {mesh:.1f} s, images {images:.1f} s, zoo build {base:.1f} s", flush=True)
    result = {
        "objects": len(CATEGORIES),
        "archs": resolve_archs(args.archs),
        "workers": args.workers,
        "rounds": rounds,
        "meshes": {
            "psnr": zoo_psnr(cli, RUNS / "mesh_zoo0"),
            "ratio_median": statistics.median(r["fit_mesh_s"] / r["zoo_build_s"] for r in rounds),
        },
        "images": {
            "psnr": zoo_psnr(cli, RUNS / "image_zoo0"),
            "ratio_median": statistics.median(r["fit_images_s"] / r["zoo_build_s"] for r in rounds),
        },
        "zoo_psnr": zoo_psnr(cli, RUNS / "zoo0"),
    }
    twins = twin_pairs(meshes, resolve_archs(args.archs), args.twin_rounds)
    result["twins"] = {"pairs": twins, "ratio_median": statistics.median(p["ratio"] for p in twins)}
    save_result("own_data_fit", result)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
