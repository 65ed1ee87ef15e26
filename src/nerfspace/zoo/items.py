"""The NeRFs of a zoo as items: object, category, preset, split and file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nerfspace.errors import InputError
from nerfspace.zoo.build import load_manifest, zoo_metadata


@dataclass
class Item:
    """One NeRF of a zoo: its object, category, preset, split and file; a defective part's defect and
    severity (in (0, 1]; 0 for a normal object)."""

    object: str
    category: str
    preset: str
    split: str
    file: Path
    defect: str | None = None
    severity: float = 0.0


def zoo_items(zoo: Path) -> list[Item]:
    """Every planned NeRF of a zoo whose file exists, with its object's category and split; its header
    is read, so a damaged file or one of another scale than the zoo's fails here, before any work."""
    zoo = Path(zoo)
    manifest = load_manifest(zoo)
    objects = {o["id"]: o for o in manifest["objects"]}
    items = []
    for n in manifest["nerfs"]:
        path = zoo / n["file"]
        if path.exists():
            zoo_metadata(zoo, manifest, n)
            o = objects[n["object"]]
            defect = (o.get("defect"), float(o.get("severity", 0.0)))
            items.append(Item(n["object"], o["category"], n["preset"], o["split"], path, *defect))
    if not items:
        raise InputError(f"{zoo}: the zoo holds no NeRF file yet")
    return items
