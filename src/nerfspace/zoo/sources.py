"""Zoos of a user's own files: meshes, Gaussian splats, point clouds and posed photos (scene folders) as
the objects NeRFs are fitted to.

An object's category is its label in a labels CSV (``file,label`` with files relative to the CSV, or
``object,label``), else the name of its folder: the first folder below a folder given on the command
line, or the folder of a file given by name. Every file is read when the zoo is planned, so a bad one is
refused before anything is fitted. A zoo records each file's path, kind, digest (of the file and of the
files it names) and frame (`FileFrame`), so a resumed build refuses a file that changed since planning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nerfspace.archs import SCENE_BOX
from nerfspace.errors import InputError, ZooError
from nerfspace.frames import FileFrame
from nerfspace.labels import read_labels
from nerfspace.shapes.mesh import MeshObject
from nerfspace.shapes.mesh_files import MESH_SUFFIXES, read_mesh, references
from nerfspace.shapes.photos import Photos, read_photos, scene_folders
from nerfspace.shapes.photos import references as photo_files
from nerfspace.shapes.splat_files import POINT_SUFFIXES, SPLAT_SUFFIXES, read_points, read_splats
from nerfspace.shapes.splats import Splats

MAX_SOURCES = 100_000


def files_under(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files with ``suffixes`` under ``path`` (itself if a file), sorted; an `InputError` if none."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not found:
        raise InputError(f"{path}: holds no {', '.join(suffixes)} files")
    return found


@dataclass(frozen=True)
class Kind:
    """How a kind of user data is found under a path, read (path, up axis, frame or None to fit one),
    and which files it is made of (its digest covers them all)."""

    find: Callable[[Path], list[Path]]
    read: Callable[[Path, str, FileFrame | None], tuple[MeshObject | Splats | Photos, FileFrame]]
    files: Callable[[Path], list[Path]]


KINDS = {
    "mesh": Kind(lambda p: files_under(p, MESH_SUFFIXES), read_mesh, lambda p: [p, *references(p)]),
    "splat": Kind(lambda p: files_under(p, SPLAT_SUFFIXES), read_splats, lambda p: [p]),
    "points": Kind(lambda p: files_under(p, POINT_SUFFIXES), read_points, lambda p: [p]),
    "images": Kind(scene_folders, read_photos, photo_files),
}


@dataclass(frozen=True)
class Source:
    """One file of a zoo: its object id, absolute path, category, kind, digest and frame."""

    id: str
    path: str
    category: str
    kind: str
    digest: str
    frame: FileFrame
    background: tuple[float, float, float] | None = None  # photos: the colour behind the object

    def to_dict(self) -> dict:
        d = {
            "id": self.id,
            "path": self.path,
            "category": self.category,
            "kind": self.kind,
            "digest": self.digest,
            "frame": self.frame.to_dict(),
        }
        return d if self.background is None else {**d, "background": list(self.background)}


def digest(path: Path, kind: str) -> str:
    """SHA-256 over every file an object is made of, in order (a changed texture changes it too)."""
    h = hashlib.sha256()
    for p in KINDS[kind].files(Path(path)):
        h.update(p.read_bytes())
    return h.hexdigest()


def object_id(path: Path) -> str:
    """A file-name-safe id from a file's name."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem).strip("_") or "object"


def file_sources(
    inputs: Sequence[Path],
    kind: str = "mesh",
    labels: Path | None = None,
    up: str = "y",
    keep_frame: bool = False,
    background: tuple[float, float, float] | None = None,
) -> tuple[Source, ...]:
    """The objects of ``kind`` given as ``inputs`` (files, scene folders, or folders of them), read and
    checked, with unique ids and their categories. Each is normalised into the scene box, or with
    ``keep_frame`` only turned (``up`` onto +z): its coordinates are then scene units, and it must lie
    inside the scene box. ``background``: photos only, the colour (0-1) behind the object in RGB photos."""
    if kind not in KINDS:
        raise InputError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    if background is not None and kind != "images":
        raise InputError("a background colour applies to photos only")
    extra = {} if background is None else {"background": tuple(background)}
    found: list[tuple[Path, str]] = []
    for given in inputs:
        given = Path(given)
        for f in KINDS[kind].find(given):
            inner = f.relative_to(given).parts if given.is_dir() else ()
            found.append((f.resolve(), inner[0] if len(inner) > 1 else f.resolve().parent.name))
    if len({f for f, _ in found}) != len(found):
        raise InputError("a file is given twice")
    if len(found) > MAX_SOURCES:
        raise InputError(f"{len(found)} files, over the cap of {MAX_SOURCES}")
    ids: list[str] = []
    for f, _ in found:
        base, n = object_id(f), 2
        name = base
        while name in ids:
            name, n = f"{base}_{n}", n + 1
        ids.append(name)
    if labels is not None:
        items = [{"file": str(f), "object": i} for (f, _), i in zip(found, ids, strict=True)]
        named = read_labels(Path(labels), items, among="the files given")
        missing = [ids[i] for i in range(len(found)) if i not in named]
        if missing:
            shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise InputError(f"{labels}: no label for {len(missing)} file(s): {shown}")
        found = [(f, named[i]) for i, (f, _) in enumerate(found)]
    kept = FileFrame.kept(up) if keep_frame else None
    out = []
    for i, (f, category) in zip(ids, found, strict=True):
        obj, frame = KINDS[kind].read(f, up, kept, **extra)
        if keep_frame and kind != "images" and obj.bounds.abs().max() > SCENE_BOX:
            raise InputError(
                f"{f}: reaches outside the scene box [-{SCENE_BOX}, {SCENE_BOX}]^3; drop --keep-frame"
            )
        out.append(Source(i, str(f), category, kind, digest(f, kind), frame, extra.get("background")))
    return tuple(out)


def source_object(entry: dict) -> MeshObject | Splats | Photos:
    """The canonical object of a zoo's object entry; a `ZooError` if its file changed since planning."""
    path = Path(entry["source"])
    if not path.exists():
        raise ZooError(f"{path}: the file of object {entry['id']!r} is gone")
    if digest(path, entry["kind"]) != entry["digest"]:
        raise ZooError(f"{path}: the file changed since the zoo was planned; use a new folder")
    frame = FileFrame.from_dict(entry["frame"])
    extra = {"background": tuple(entry["background"])} if "background" in entry else {}
    return KINDS[entry["kind"]].read(path, frame.up, frame, **extra)[0]
