"""Across families: NeRFs of Gaussian splats and of point clouds against NeRFs of the same objects.

For each shipped track's test objects (the shipped zoo, `--per-category` objects of each category), scan
the procedural object (`nerfspace.shapes.scan`: 8 scanner positions, range noise), write the scan as a
3DGS splat PLY and as a point-cloud PLY, and import both with the product's commands (`nerfspace import
splat|points`, NeRFs in `--archs`). On the aligned track the files are written in the object's canonical
frame and imported with `--keep-frame`; on the independent track each scan is of the object in a pose,
light and scale of its own (an independent capture) and the import normalises it. Then recall@1 from a
splat's (point cloud's) NeRF to the gallery of the shipped NeRFs in the seen architectures, and back, for
the track's shipped encoder and the no-learning field baselines, in the same run.

python benchmarks/cross_family.py [--tracks aligned,independent] [--per-category 2] [--archs mlp]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import torch

from common import ROOT, save_result
from nerfspace.archs import SEEN
from nerfspace.demo import shipped
from nerfspace.evaluation.field_features import FIELD_BASELINES, field_embeddings
from nerfspace.frames import FileFrame
from nerfspace.inference import Encoder
from nerfspace.seeding import derive_seed
from nerfspace.shapes.scan import disc_splats, scan
from nerfspace.shapes.splat_files import read_points, read_splats, write_points, write_splats
from nerfspace.zoo.build import load_manifest, planned_object
from nerfspace.zoo.captures import CaptureConfig, draw_capture
from nerfspace.zoo.items import zoo_items

RUNS = ROOT / "runs" / "cross_family"
FAMILIES = ("splat", "points")
READERS = {"splat": read_splats, "points": read_points}
BASELINES = ("field-probe", "field-invariant")


def write_scans(track: str, objects: list[dict], out: Path) -> None:
    """The splat and point-cloud files of ``objects`` (skipped where present)."""
    for entry in objects:
        paths = {f: out / f / entry["category"] / f"{entry['id']}.ply" for f in FAMILIES}
        if all(p.exists() for p in paths.values()):
            continue
        obj = planned_object(entry)
        if track == "independent":
            capture = draw_capture(CaptureConfig("independent"), derive_seed("scan", entry["id"]), obj, 64, 1)
            obj = obj.posed(capture.pose, capture.light)
        s = scan(obj, derive_seed("scan", entry["id"], "rays"))
        for p in paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
        write_splats(paths["splat"], **{k: v.numpy() for k, v in disc_splats(s).items()})
        write_points(paths["points"], s.points.numpy(), s.colors.numpy())


def recall_at_1(queries: torch.Tensor, q_obj: list[str], gallery: torch.Tensor, g_obj: list[str]) -> float:
    """Share of queries whose nearest gallery row (cosine) is of the same object."""
    q = torch.nn.functional.normalize(queries, dim=1)
    g = torch.nn.functional.normalize(gallery, dim=1)
    nearest = (q @ g.T).argmax(1).tolist()
    return sum(q_obj[i] == g_obj[j] for i, j in enumerate(nearest)) / len(q_obj)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", default="aligned,independent")
    ap.add_argument("--per-category", type=int, default=2)
    ap.add_argument("--archs", default="mlp")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    cli = str(ROOT / ".venv" / "bin" / "nerfspace")
    results = {}
    for s in shipped():
        if s.track not in args.tracks.split(","):
            continue
        out = RUNS / s.track
        manifest = load_manifest(s.zoo)
        per: dict[str, int] = {}
        objects = []
        for o in sorted(manifest["objects"], key=lambda o: o["id"]):
            if per.setdefault(o["category"], 0) < args.per_category:
                per[o["category"]] += 1
                objects.append(o)
        write_scans(s.track, objects, out / "files")
        keep = ["--keep-frame"] if s.track == "aligned" else []
        psnr = {}
        for family in FAMILIES:
            zoo = out / f"{family}_zoo"
            cmd = [cli, "import", family, str(out / "files" / family), "--out", str(zoo), "--up", "z", *keep]
            subprocess.run([*cmd, "--archs", args.archs, "--workers", str(args.workers)], check=True)
            info = subprocess.run([cli, "zoo", "info", str(zoo), "--json"], capture_output=True, text=True)
            psnr[family] = {p: v["psnr"] for p, v in json.loads(info.stdout)["presets"].items()}
        chosen = {o["id"] for o in objects}
        gallery = [it for it in zoo_items(s.zoo) if it.preset in SEEN and it.object in chosen]
        queries = {f: zoo_items(out / f"{f}_zoo") for f in FAMILIES}
        encoder = Encoder.load(s.encoder)
        methods = {}
        files = {
            f: [out / "files" / f / it.category / f"{it.object}.ply" for it in queries[f]] for f in FAMILIES
        }
        kept = FileFrame.kept("z") if s.track == "aligned" else None
        fields = {f: [READERS[f](p, "z", kept)[0].radiance_field() for p in files[f]] for f in FAMILIES}
        g_obj = [it.object for it in gallery]
        for method in ("encoder", *BASELINES):
            rows = {}
            for name, items in (("gallery", gallery), *queries.items()):
                if method == "encoder":
                    rows[name] = encoder.embed([it.file for it in items]).vectors
                else:
                    rows[name] = field_embeddings(items, method).vectors
            variants = {method: rows}
            if method != "encoder":  # the files' own fields, no NeRF fitted
                direct = {f: torch.stack([FIELD_BASELINES[method](q) for q in fields[f]]) for f in FAMILIES}
                variants[f"{method}, the file's own field"] = {"gallery": rows["gallery"], **direct}
            elif "graph" not in encoder.composition.needs:
                direct = {f: encoder.embed_fields(fields[f]) for f in FAMILIES}
                variants["encoder, the file's own field"] = {"gallery": rows["gallery"], **direct}
            for name, r in variants.items():
                methods[name] = {
                    f: {
                        "to_nerfs": recall_at_1(r[f], [it.object for it in queries[f]], r["gallery"], g_obj),
                        "from_nerfs": recall_at_1(
                            r["gallery"], g_obj, r[f], [it.object for it in queries[f]]
                        ),
                    }
                    for f in FAMILIES
                }
                print(s.track, name, json.dumps(methods[name]), flush=True)
        results[s.track] = {
            "objects": len(objects),
            "gallery_nerfs": len(gallery),
            "query_archs": args.archs,
            "psnr": psnr,
            "recall@1": methods,
        }
    save_result("cross_family", {"tracks": results})


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
