"""Meshes -> NeRFs: held-out PSNR of textured meshes per architecture, and speed, two ways, each run in
turns (A B A B) so every ratio is taken pair by pair on one machine:

- end to end: `nerfspace fit mesh` on the meshes against `nerfspace zoo build` of as many procedural
  objects (different shapes: the time a fit takes grows with the volume an object fills);
- the same shapes: fitting the meshes (read from their files, rendered by the mesh renderer) against
  fitting their exact SDF twins (sphere traced), one spec at a time through `nerfspace.zoo.fit`, so the
  ratio is the cost of the mesh path alone.

python benchmarks/mesh_fit.py [--pairs 2] [--archs seen] [--workers 2] [--twin-rounds 2]
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
from nerfspace.shapes import Assembly
from nerfspace.zoo import fit, fit_config
from nerfspace.zoo.sources import file_sources, source_object

RUNS = ROOT / "runs" / "mesh_fit"
CATEGORIES = ("chair", "car", "lamp", "bench", "sofa", "airplane")  # the zoo build's objects: as many NeRFs


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
        mesh.visual = trimesh.visual.TextureVisuals(uv=uv, image=texture(i))
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


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--archs", default="seen")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--twin-rounds", type=int, default=2)
    args = ap.parse_args()
    shutil.rmtree(RUNS, ignore_errors=True)
    meshes = RUNS / "meshes"
    textured_meshes(meshes)
    cli = [str(ROOT / ".venv" / "bin" / "nerfspace")]
    common = ["--archs", args.archs, "--workers", str(args.workers)]
    pairs = []
    for i in range(args.pairs):
        mesh_zoo, zoo = RUNS / f"mesh_zoo{i}", RUNS / f"zoo{i}"
        a = timed([*cli, "fit", "mesh", str(meshes), "--out", str(mesh_zoo), "--up", "z", *common])
        b = timed([*cli, "zoo", "build", str(zoo), "--classes", ",".join(CATEGORIES), "-n", "1", *common])
        pairs.append({"fit_mesh_s": a, "zoo_build_s": b, "ratio": a / b})
        print(f"pair {i}: fit mesh {a:.1f} s, zoo build {b:.1f} s, ratio {a / b:.2f}", flush=True)
    info = json.loads(
        subprocess.run(
            [*cli, "zoo", "info", str(RUNS / "mesh_zoo0"), "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    zoo_info = json.loads(
        subprocess.run(
            [*cli, "zoo", "info", str(RUNS / "zoo0"), "--json"], check=True, capture_output=True, text=True
        ).stdout
    )
    result = {
        "meshes": len(CATEGORIES),
        "nerfs": info["nerfs"],
        "workers": args.workers,
        "psnr": {p: v["psnr"] for p, v in info["presets"].items()},
        "zoo_psnr": {p: v["psnr"] for p, v in zoo_info["presets"].items()},
        "pairs": pairs,
        "ratio_median": statistics.median(p["ratio"] for p in pairs),
    }
    twins = twin_pairs(meshes, resolve_archs(args.archs), args.twin_rounds)
    result["twins"] = {"pairs": twins, "ratio_median": statistics.median(p["ratio"] for p in twins)}
    for p, v in result["psnr"].items():
        print(f"{p}: median held-out PSNR {v['median']:.2f} dB (min {v['min']:.2f})")
    save_result("mesh_fit", result)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
