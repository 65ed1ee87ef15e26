"""Summary of a zoo (`nerfspace zoo info`). The JSON is a documented contract (docs/cli.md)."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from nerfspace.errors import InputError
from nerfspace.zoo.build import load_manifest, zoo_metadata


def zoo_info(zoo: Path) -> dict:
    """Counts by split, category and preset; PSNR min/median/max per preset; fit mode and scale.
    Reads only file headers (a NeRF of another scale than the zoo's is a `ZooError`). Planned NeRFs
    not yet fitted are counted under ``missing``."""
    zoo = Path(zoo)
    manifest = load_manifest(zoo)
    psnrs: dict[str, list[float]] = {}
    missing = 0
    for n in manifest["nerfs"]:
        path = zoo / n["file"]
        if not path.exists():
            missing += 1
            continue
        meta = zoo_metadata(zoo, manifest, n)
        try:
            psnrs.setdefault(n["preset"], []).append(float(meta["psnr"]))
        except (KeyError, ValueError) as e:
            raise InputError(f"{path}: bad NeRF metadata (psnr: {e})") from e
    cfg = manifest["config"]
    objects = manifest["objects"]
    return {
        "zoo": str(zoo),
        "scale": cfg["scale"],
        "fit": cfg["fit"],
        "captures": cfg.get("captures", {}).get("mode", "aligned"),
        "seed": cfg["seed"],
        "complete": bool(manifest.get("complete")) and missing == 0,
        "objects": len(objects),
        "nerfs": sum(len(v) for v in psnrs.values()),
        "missing": missing,
        "presets": {
            p: {"count": len(v), "psnr": {"min": min(v), "median": statistics.median(v), "max": max(v)}}
            for p, v in psnrs.items()
        },
        "splits": dict(Counter(o["split"] for o in objects)),
        "categories": dict(Counter(o["category"] for o in objects)),
    }
