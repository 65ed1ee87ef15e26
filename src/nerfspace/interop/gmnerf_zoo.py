"""Importing the paper's public dataset (``SRC/<arch>/<class_id>/<nerf_id>/``, split files
``SRC/{train,val,test}.txt`` of ``class_id/nerf_id`` lines) into a zoo folder.

An ``<arch>`` folder is a preset name (at the import's scale) or holds a ``spec.json``. NeRFs of objects
listed in no split file are skipped (and counted). The import resumes: NeRF files already written are
kept, and a folder holding another import is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from nerfspace.archs import PRESETS, SCALES, ArchSpec, get_preset, load_spec
from nerfspace.atomic import atomic_write_json
from nerfspace.cache import file_hash
from nerfspace.errors import InputError, ZooError
from nerfspace.interop.gmnerf import GRID_FILE, SPEC_FILE, WEIGHTS_FILE, read_gmnerf_nerf
from nerfspace.locks import LOCK_NAME, folder_lock
from nerfspace.zoo.build import MANIFEST, SPLITS, ZOO_FORMAT, is_done, load_manifest, sweep_zoo
from nerfspace.zoo.storage import read_metadata, save_nerf

# ShapeNet synset id → our category name
CLASS_IDS = {
    "02691156": "airplane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "display",
    "03636649": "lamp",
    "03691459": "speaker",
    "04090263": "rifle",
    "04256520": "sofa",
    "04379243": "table",
    "04401088": "phone",
    "04530566": "watercraft",
}
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class GmnerfImport:
    """How to import: the scale that preset-named ``<arch>`` folders resolve at, and the occupancy
    resolution (None keeps each grid's own, 96^3 in the paper's data; else conservative resampling)."""

    scale: str = "paper"
    occ_res: int | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise InputError(f"unknown scale {self.scale!r}; expected one of {', '.join(SCALES)}")
        if self.occ_res is not None and not 2 <= self.occ_res <= 512:
            raise InputError(f"--occ-res must be in [2, 512], got {self.occ_res}")


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as e:
        raise InputError(f"{folder}: unreadable folder ({e})") from e


def read_splits(src: Path) -> dict[str, str]:
    """``class_id/nerf_id`` → split, from the split files present (at least one)."""
    splits: dict[str, str] = {}
    found = [s for s in SPLITS if (src / f"{s}.txt").is_file()]
    if not found:
        raise InputError(f"{src}: no split files ({', '.join(f'{s}.txt' for s in SPLITS)})")
    for split in found:
        path = src / f"{split}.txt"
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{path}: unreadable split file ({e})") from e
        for number, line in enumerate((ln.strip() for ln in lines), 1):
            if not line:
                continue
            parts = line.removesuffix("/").split("/")
            if len(parts) != 2 or not all(_SAFE.match(p) and p not in (".", "..") for p in parts):
                raise InputError(f"{path}: line {number}: bad entry {line[:80]!r}; expected class_id/nerf_id")
            key = "/".join(parts)
            if splits.setdefault(key, split) != split:
                raise ZooError(f"{path}: {key} is in both {splits[key]} and {split}")
    return splits


def _arch_spec(folder: Path, scale: str) -> ArchSpec:
    if (folder / SPEC_FILE).is_file():
        return load_spec(folder / SPEC_FILE)
    if folder.name in PRESETS:
        return get_preset(folder.name, scale)
    raise InputError(f"{folder}: unknown architecture folder (not a preset name and no {SPEC_FILE})")


def plan_import(src: Path, cfg: GmnerfImport) -> dict:
    """The manifest of the zoo an import of ``src`` writes (every NeRF still to be converted)."""
    src = Path(src)
    if not src.is_dir():
        raise InputError(f"{src}: not a folder")
    splits = read_splits(src)
    specs, objects, nerfs, skipped = {}, {}, [], 0
    for arch in _subdirs(src):
        if not _SAFE.match(arch.name):
            raise InputError(f"{arch}: architecture folder names may use only letters, digits, '_', '.', '-'")
        spec = _arch_spec(arch, cfg.scale)
        for cls in _subdirs(arch):
            if cls.name not in CLASS_IDS:
                raise InputError(f"{cls}: unknown class id {cls.name!r} (not one of the 13 ShapeNet classes)")
            for nerf in _subdirs(cls):
                key = f"{cls.name}/{nerf.name}"
                if not (nerf / WEIGHTS_FILE).is_file():
                    raise InputError(f"{nerf}: missing {WEIGHTS_FILE}")
                if key not in splits:
                    skipped += 1
                    continue
                oid = f"{CLASS_IDS[cls.name]}_{nerf.name}"
                objects[oid] = {
                    "id": oid,
                    "category": CLASS_IDS[cls.name],
                    "split": splits[key],
                    "source": key,
                }
                specs[arch.name] = spec.to_dict()
                nerfs.append(
                    {
                        "file": f"nerfs/{arch.name}/{oid}.safetensors",
                        "object": oid,
                        "preset": arch.name,
                        "source": f"{arch.name}/{key}",
                    }
                )
    if not nerfs:
        raise InputError(f"{src}: no NeRF listed in the split files ({skipped} unlisted)")
    config = {
        "source": "gmnerf",
        **asdict(cfg),
        "fit": "imported",
        "seed": 0,
        "classes": sorted({o["category"] for o in objects.values()}),
        "archs": list(specs),
        "specs": specs,
    }
    return {
        "format": ZOO_FORMAT,
        "config": config,
        "fit_config": {},
        "objects": sorted(objects.values(), key=lambda o: o["id"]),
        "nerfs": nerfs,
        "skipped_unlisted": skipped,
        "imported_from": str(src),
        "complete": False,
    }


def source_digest(folder: Path) -> str:
    """The content of a source NeRF folder (its weights and grid files' hashes): an imported NeRF records
    it, so a resumed import redoes every NeRF whose source is not the one it was made from."""
    files = (folder / WEIGHTS_FILE, folder / GRID_FILE)
    return ":".join(file_hash(f) if f.exists() else "-" for f in files)


def import_gmnerf(
    src: Path,
    out: Path,
    cfg: GmnerfImport = GmnerfImport(),
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Import (or resume importing) ``src`` into the zoo folder ``out``; returns the manifest. The folder
    is locked while importing: a second import into it is refused until this one ends."""
    src, out = Path(src), Path(out)
    manifest = plan_import(src, cfg)
    sweep_zoo(out)
    if (out / MANIFEST).exists():
        if load_manifest(out)["config"] != manifest["config"]:
            raise ZooError(f"{out}: holds another zoo or import; use a new folder")
    elif out.exists() and (not out.is_dir() or any(p.name != LOCK_NAME for p in out.iterdir())):
        raise InputError(f"{out}: exists and is not an empty folder")
    with folder_lock(out):  # checked before the lock is made
        return _import(src, out, cfg, manifest, progress)


def _import(
    src: Path, out: Path, cfg: GmnerfImport, manifest: dict, progress: Callable[[int, int], None] | None
) -> dict:
    atomic_write_json(out / MANIFEST, manifest)
    specs = {a: ArchSpec.from_dict(d) for a, d in manifest["config"]["specs"].items()}
    objects = {o["id"]: o for o in manifest["objects"]}
    total = len(manifest["nerfs"])
    for i, n in enumerate(manifest["nerfs"]):
        path = out / n["file"]
        digest = source_digest(src / n["source"])
        if not (is_done(path) and read_metadata(path).get("source_digest") == digest):
            nerf = read_gmnerf_nerf(src / n["source"], specs[n["preset"]], cfg.occ_res)
            obj = objects[n["object"]]
            nerf.meta = {
                "object_id": obj["id"],
                "category": obj["category"],
                "split": obj["split"],
                "fit": "imported",
                "psnr": "nan",
                "preset": n["preset"],
                "scale": cfg.scale,
                "source": f"gmnerf:{n['source']}",
                "source_digest": digest,
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            save_nerf(path, nerf)
        if progress:
            progress(i + 1, total)
    manifest["complete"] = True
    atomic_write_json(out / MANIFEST, manifest)
    return manifest
