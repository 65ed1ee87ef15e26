"""Building a NeRF zoo: plan (objects, splits, NeRFs), fit in batches of one spec, resume.

Layout of a zoo folder::

    ZOO/manifest.json                      plan: config, objects with splits, planned NeRFs
    ZOO/nerfs/<preset>/<object_id>.safetensors

The plan is a pure function of the config, so a restarted build finds the same plan, skips every
NeRF file already written (files are written atomically, so one that exists is complete) and fits
the rest. NeRFs are fitted in batches of one preset; every NeRF draws its randomness from its own
seed, so the zoo does not depend on how the work was split.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from nerfspace.archs import PRESETS, SCALES, SEEN, ArchSpec, get_preset
from nerfspace.atomic import atomic_write_bytes, atomic_write_json, sweep_temps
from nerfspace.errors import FileFormatError, InputError, ZooError, access_error
from nerfspace.executors import Executor
from nerfspace.locks import LOCK_NAME, folder_lock
from nerfspace.seeding import derive_seed
from nerfspace.shapes import CATEGORIES, make_object
from nerfspace.shapes.parts import DEFECTS, PARTS, make_part, severity_value
from nerfspace.shapes.photos import Photos
from nerfspace.shapes.trace import Subject
from nerfspace.zoo.captures import CaptureConfig, draw_capture
from nerfspace.zoo.fitting import FIT_MODES, FitConfig, fit, fit_config, views
from nerfspace.zoo.sources import Source, source_object
from nerfspace.zoo.storage import NeRF, read_metadata, save_nerf

ZOO_FORMAT = "nerfspace-zoo/1"
MANIFEST = "manifest.json"
SPLITS = ("train", "val", "test")
MAX_OBJECTS_PER_CLASS = 100_000  # a plan larger than this is a typo (it would take years to fit)


@dataclass(frozen=True)
class ZooConfig:
    """What a zoo holds. ``classes``: object categories or machine parts (`nerfspace.shapes.parts`).
    ``archs`` None applies the protocol: the seen presets for train/val objects, all 13 for test
    objects; otherwise every object gets the listed architectures: preset names, or names of
    user-declared specs given in ``declared`` as (name, spec) pairs; ``test_archs`` overrides them for
    test objects. ``captures``: how each NeRF's views are taken (`nerfspace.zoo.captures`). An
    inspection zoo adds, per part, ``defective_per_class`` test objects for every defect and severity
    (the normal objects are its reference and normal test parts). ``sources``: a user's files (meshes,
    splats, point clouds; `nerfspace.zoo.sources`), test objects beside the classes' (``classes`` may
    then be empty)."""

    classes: tuple[str, ...] = CATEGORIES
    objects_per_class: int = 10
    archs: tuple[str, ...] | None = None
    fit: str = "photometric"
    scale: str = "small"
    seed: int = 0
    declared: tuple[tuple[str, ArchSpec], ...] = ()
    captures: CaptureConfig = CaptureConfig()
    test_archs: tuple[str, ...] | None = None
    defects: tuple[str, ...] = ()
    severities: tuple[float, ...] = ()
    defective_per_class: int = 0
    sources: tuple[Source, ...] = ()

    def __post_init__(self) -> None:
        for c in self.classes:
            if c not in CATEGORIES and c not in PARTS:
                known = f"categories are {', '.join(CATEGORIES)}; parts are {', '.join(PARTS)}"
                raise InputError(f"unknown category {c!r}; {known}")
        if not self.classes and not self.sources:
            raise InputError("no category given")
        if len({s.id for s in self.sources}) != len(self.sources):
            raise InputError("object ids of files must be unique")
        if self.sources and self.fit != "photometric":
            raise InputError("your own files are fitted from their views only (fit mode photometric)")
        if any(s.kind == "images" for s in self.sources) and self.captures.mode != "aligned":
            raise InputError("photos come with their own cameras: captures must be aligned")
        self._check_defects()
        if self.objects_per_class <= 0:
            raise InputError(f"--objects-per-class must be >= 1, got {self.objects_per_class}")
        if self.objects_per_class > MAX_OBJECTS_PER_CLASS:
            raise InputError(
                f"--objects-per-class must be <= {MAX_OBJECTS_PER_CLASS}, got {self.objects_per_class}"
            )
        names = dict(self.declared)
        if set(names) & set(PRESETS) or len(names) != len(self.declared):
            raise InputError("declared architectures need unique names that are not preset names")
        for a in (*(self.archs or ()), *(self.test_archs or ())):
            if a not in PRESETS and a not in names:
                raise InputError(f"unknown architecture {a!r}; presets are {', '.join(PRESETS)}")
        if self.fit not in FIT_MODES:
            raise InputError(f"unknown fit mode {self.fit!r}; expected one of {', '.join(FIT_MODES)}")
        if self.scale not in SCALES:
            raise InputError(f"unknown scale {self.scale!r}; expected one of {', '.join(SCALES)}")

    def _check_defects(self) -> None:
        for d in self.defects:
            if d not in DEFECTS:
                raise InputError(f"unknown defect {d!r}; defects are {', '.join(DEFECTS)}")
        for v in self.severities:
            severity_value(v)
        if bool(self.defects) != (self.defective_per_class > 0) or bool(self.defects) != bool(
            self.severities
        ):
            raise InputError(
                "defects need severities and a number of defective parts per class, and the reverse"
            )
        if self.defective_per_class > MAX_OBJECTS_PER_CLASS:
            raise InputError(f"--defective-per-class must be <= {MAX_OBJECTS_PER_CLASS}")
        if self.defects and any(c not in PARTS for c in self.classes):
            raise InputError(f"defects apply to parts only ({', '.join(PARTS)})")

    def spec(self, name: str) -> ArchSpec:
        """The ArchSpec of an architecture of this zoo (declared, else the preset at the zoo's scale)."""
        return dict(self.declared).get(name) or get_preset(name, self.scale)

    def order(self, name: str) -> int:
        """Sort key of an architecture: the presets in registry order, then the declared ones."""
        declared = [n for n, _ in self.declared]
        return PRESETS.index(name) if name in PRESETS else len(PRESETS) + declared.index(name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["archs"] = list(self.archs) if self.archs is not None else None
        del d["declared"], d["captures"], d["sources"]
        for key in ("test_archs", "defects", "severities", "defective_per_class"):  # kept only when set, so
            if not d[key]:  # manifests of zoos from before them keep their keys
                del d[key]
            elif key != "defective_per_class":
                d[key] = list(d[key])
        if self.declared:  # only then: manifests of preset-only zoos keep their keys
            d["declared"] = {n: s.to_dict() for n, s in self.declared}
        if self.captures.mode != "aligned":  # likewise for aligned zoos
            d["captures"] = self.captures.to_dict()
        if self.sources:
            d["sources"] = [s.to_dict() for s in self.sources]
        return d


def split_counts(n: int) -> dict[str, int]:
    """Objects per split for ``n`` objects of a category: ~70/10/20, at least one test object
    from 2 objects and one validation object from 3."""
    test = max(1, round(0.2 * n)) if n >= 2 else 0
    val = max(1, round(0.1 * n)) if n >= 3 else 0
    return {"train": n - test - val, "val": val, "test": test}


def plan(cfg: ZooConfig, fit_cfg: FitConfig) -> dict:
    """The manifest of a zoo: objects with seeds and splits, and the NeRFs to fit."""
    objects, nerfs = [], []
    for cat in cfg.classes:
        counts = split_counts(cfg.objects_per_class)
        order = torch.randperm(
            cfg.objects_per_class,
            generator=torch.Generator().manual_seed(derive_seed("split", cfg.seed, cat)),
        ).tolist()
        labels = [s for s in SPLITS for _ in range(counts[s])]
        for i in range(cfg.objects_per_class):
            objects.append(
                {
                    "id": f"{cat}_{i:04d}",
                    "category": cat,
                    "seed": derive_seed("object", cfg.seed, cat, i),
                    "split": labels[order.index(i)],
                }
            )
        for defect in cfg.defects:
            for severity in cfg.severities:
                level = severity_value(severity)
                for i in range(cfg.defective_per_class):
                    objects.append(
                        {
                            "id": f"{cat}_{defect}_{level:g}_{i:04d}",
                            "category": cat,
                            "seed": derive_seed("object", cfg.seed, cat, defect, f"{level:g}", i),
                            "split": "test",
                            "defect": defect,
                            "severity": level,
                        }
                    )
    for src in cfg.sources:
        d = src.to_dict()  # kind, digest, frame (and background) follow as the source records them
        head = {"id": d.pop("id"), "category": d.pop("category")}
        seed = derive_seed("object", cfg.seed, src.id)
        objects.append({**head, "seed": seed, "split": "test", "source": d.pop("path"), **d})
    for obj in objects:
        presets = cfg.archs or (PRESETS if obj["split"] == "test" else SEEN)
        if obj["split"] == "test" and cfg.test_archs:
            presets = cfg.test_archs
        for p in presets:
            nerf = {
                "file": f"nerfs/{p}/{obj['id']}.safetensors",
                "object": obj["id"],
                "preset": p,
                "seed": derive_seed("nerf", cfg.seed, obj["id"], p),
            }
            if cfg.captures.mode == "independent":
                nerf["capture_seed"] = derive_seed("capture", cfg.seed, obj["id"], p)
            nerfs.append(nerf)
    nerfs.sort(key=lambda n: (cfg.order(n["preset"]), n["object"]))
    return {
        "format": ZOO_FORMAT,
        "config": cfg.to_dict(),
        "fit_config": fit_cfg.to_dict(),
        "objects": objects,
        "nerfs": nerfs,
        "complete": False,
    }


def load_manifest(zoo: Path) -> dict:
    """Read and check a zoo's manifest."""
    zoo = Path(zoo)
    path = zoo / MANIFEST
    if not zoo.is_dir():
        raise InputError(f"{zoo}: not a zoo folder")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise InputError(f"{zoo}: not a zoo (no {MANIFEST})") from e
    except PermissionError as e:
        raise access_error(e) from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: unreadable manifest ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != ZOO_FORMAT:
        raise FileFormatError(f"{path}: not a nerfspace zoo manifest")
    _check_manifest(path, manifest)
    return manifest


# the string keys every manifest entry has; the first one is unique within its list
_ENTRY_KEYS = {"objects": ("id", "category", "split"), "nerfs": ("file", "object", "preset")}


def _check_manifest(path: Path, manifest: dict) -> None:
    """Every entry has its keys, object ids and NeRF files are unique, every NeRF names a listed object."""
    if not isinstance(manifest.get("config"), dict) or not isinstance(manifest["config"].get("scale"), str):
        raise FileFormatError(f"{path}: malformed manifest (no config.scale)")
    for part, keys in _ENTRY_KEYS.items():
        entries = manifest.get(part)
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and all(isinstance(e.get(k), str) for k in keys) for e in entries
        ):
            raise FileFormatError(f"{path}: malformed manifest (every {part} entry needs {', '.join(keys)})")
        seen: set[str] = set()
        for e in entries:
            if e[keys[0]] in seen:
                raise ZooError(f"{path}: {part} entry {keys[0]} {e[keys[0]]!r} is listed twice")
            seen.add(e[keys[0]])
    ids = {o["id"] for o in manifest["objects"]}
    for n in manifest["nerfs"]:
        if n["object"] not in ids:
            raise ZooError(f"{path}: NeRF {n['file']!r} names the unlisted object {n['object']!r}")


def planned_object(obj: dict) -> Subject:
    """The object of a manifest's object entry: a user's file, or a procedural object (a category's, or
    a part's, maybe defective)."""
    if "source" in obj:
        return source_object(obj)
    if obj["category"] in PARTS:
        return make_part(obj["category"], obj["seed"], obj.get("defect"), obj.get("severity", 0.0))[0]
    return make_object(obj["category"], obj["seed"])


def object_metadata(obj: dict) -> dict[str, str]:
    """What NeRF files record of their object beyond its id and category: a user's file, its kind and
    frame; a defective part's defect, severity and ground-truth region (placed frame)."""
    if "source" in obj:
        source = {"file": obj["source"], "kind": obj["kind"], **obj["frame"]}
        return {"source": json.dumps(source, sort_keys=True)}
    if "defect" not in obj:
        return {}
    region = make_part(obj["category"], obj["seed"], obj["defect"], obj["severity"])[1]
    return {
        "defect": obj["defect"],
        "severity": f"{obj['severity']:g}",
        "region": json.dumps(region.to_dict()),
    }


def zoo_metadata(zoo: Path, manifest: dict, nerf: dict) -> dict[str, str]:
    """The metadata of one planned NeRF file of a zoo; a `ZooError` if its scale is not the zoo's."""
    path = Path(zoo) / nerf["file"]
    meta = read_metadata(path)
    scale = manifest["config"]["scale"]
    if meta.get("scale", scale) != scale:
        raise ZooError(f"{path}: a NeRF of scale {meta['scale']!r} in a zoo of scale {scale!r}")
    return meta


def sweep_zoo(zoo: Path) -> None:
    """Remove the temp files of writes into a zoo folder killed mid-way (manifest, NeRF files)."""
    for folder in (zoo, *Path(zoo).glob("nerfs/*")):
        sweep_temps(folder)


def is_done(path: Path) -> bool:
    """A NeRF file exists and is readable (writes are atomic, so it is complete)."""
    if not path.exists():
        return False
    try:
        read_metadata(path)
        return True
    except InputError:
        return False


def _prepare(out: Path, cfg: ZooConfig, fit_cfg: FitConfig) -> dict:
    """Create the zoo folder or check that an existing one holds the same plan."""
    manifest = plan(cfg, fit_cfg)
    if (out / MANIFEST).exists():
        old = load_manifest(out)
        changed = [
            f"{part}.{key}"
            for part in ("config", "fit_config")
            for key, value in manifest[part].items()
            if old.get(part, {}).get(key) != value
        ]
        if changed:
            raise ZooError(
                f"{out}: holds a zoo built with other settings ({', '.join(changed)}); use a new folder"
            )
    out.mkdir(parents=True, exist_ok=True)
    sweep_zoo(out)  # only now: a refused command leaves the folder as it found it
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def _fit_batch(
    out: str,
    preset: str,
    jobs: list[dict],
    objects: dict[str, dict],
    cfg: ZooConfig,
    fit_cfg: FitConfig,
    threads: int,
) -> None:
    """Fit one batch of NeRFs of one architecture and write those not yet written (a task of an
    `Executor`: run twice, it writes nothing new)."""
    torch.set_num_threads(threads)
    spec = cfg.spec(preset)
    objs = [planned_object(objects[j["object"]]) for j in jobs]
    cameras, captured = None, [{}] * len(jobs)  # aligned: the fit's shared views
    if cfg.captures.mode == "independent":
        caps = [
            draw_capture(cfg.captures, j["capture_seed"], o, fit_cfg.image_size, fit_cfg.test_views)
            for j, o in zip(jobs, objs, strict=True)
        ]
        objs = [o.posed(c.pose, c.light) for o, c in zip(objs, caps, strict=True)]
        cameras = [(c.train, c.test) for c in caps]
        captured = [{"capture": json.dumps(c.to_dict(), sort_keys=True)} for c in caps]
    if any(isinstance(o, Photos) for o in objs):  # photos are seen from their own cameras
        size = fit_cfg.image_size
        cameras = [o.cameras(size) if isinstance(o, Photos) else views(fit_cfg) for o in objs]
    result = fit(spec, objs, [j["seed"] for j in jobs], fit_cfg, cameras)
    for i, job in enumerate(jobs):
        obj = objects[job["object"]]
        meta = {
            **captured[i],
            **object_metadata(obj),
            "object_id": obj["id"],
            "category": obj["category"],
            "split": obj["split"],
            "fit": fit_cfg.mode,
            "psnr": f"{result.psnr[i]:.4f}",
            "seed": str(job["seed"]),
            "preset": preset,
            "scale": cfg.scale,
        }
        path = Path(out) / job["file"]
        if is_done(path):  # written before a crash: kept as it is
            continue
        nerf = NeRF(spec, {n: t[i] for n, t in result.params.items()}, result.occupancy[i], meta)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_nerf(path, nerf)


def build_zoo(
    out: Path,
    cfg: ZooConfig,
    executor: Executor = Executor(),
    progress: Callable[[int, int], None] | None = None,
    fit_cfg: FitConfig | None = None,
) -> dict:
    """Build (or resume) the zoo at ``out``, its batches run by ``executor`` (inline by default; the files
    do not depend on it). ``progress(done, total)`` is called as NeRFs finish.
    ``fit_cfg`` defaults to the settings of the zoo's scale and fit mode. Returns the manifest. The
    folder is locked while building: a second build of it is refused until this one ends."""
    out = Path(out)
    fit_cfg = fit_cfg or fit_config(cfg.fit, cfg.scale)
    if fit_cfg.mode != cfg.fit:
        raise InputError(f"fit config mode {fit_cfg.mode!r} differs from the zoo's {cfg.fit!r}")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir() and not (out / MANIFEST).exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise InputError(f"{out}: folder is not empty and holds no zoo")  # checked before the lock is made
    with folder_lock(out):
        return _build(out, cfg, executor, progress, fit_cfg)


def _build(
    out: Path,
    cfg: ZooConfig,
    executor: Executor,
    progress: Callable[[int, int], None] | None,
    fit_cfg: FitConfig,
) -> dict:
    manifest = _prepare(out, cfg, fit_cfg)
    batch = fit_cfg.batch
    # the plan's batches, each fitted whole while any of its NeRFs is missing: a NeRF's bytes depend on
    # its batch (float rounding), so a resumed build writes the files an uninterrupted one would
    batches, total, done = [], len(manifest["nerfs"]), 0
    for preset in sorted({n["preset"] for n in manifest["nerfs"]}, key=cfg.order):
        jobs = [n for n in manifest["nerfs"] if n["preset"] == preset]
        for chunk in (jobs[i : i + batch] for i in range(0, len(jobs), batch)):
            missing = sum(not is_done(out / n["file"]) for n in chunk)
            done += len(chunk) - missing
            if missing:
                batches.append((preset, chunk, missing))
    objects = {o["id"]: o for o in manifest["objects"]}
    if progress:
        progress(done, total)
    tasks = [(str(out), p, jobs, objects, cfg, fit_cfg) for p, jobs, _ in batches]
    for i in executor.run(_fit_batch, tasks):
        done += batches[i][2]
        if progress:
            progress(done, total)
    manifest["complete"] = True
    atomic_write_json(out / MANIFEST, manifest)
    return manifest


def split_zoo(zoo: Path, out: Path, split: str) -> dict:
    """Copy the objects of one split of a complete zoo (and their NeRF files) into a new zoo at
    ``out``; its manifest keeps the original plan's settings. Returns the new manifest."""
    zoo, out = Path(zoo), Path(out)
    manifest = load_manifest(zoo)
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not manifest.get("complete"):
        raise InputError(f"{zoo}: the zoo is not complete; finish building it first")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out}: exists and is not empty")
    objects = [o for o in manifest["objects"] if o["split"] == split]
    keep = {o["id"] for o in objects}
    nerfs = [n for n in manifest["nerfs"] if n["object"] in keep]
    for n in nerfs:
        dest = out / n["file"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, (zoo / n["file"]).read_bytes())
    subset = {**manifest, "objects": objects, "nerfs": nerfs, "split_of": str(zoo)}
    atomic_write_json(out / MANIFEST, subset)
    return subset
