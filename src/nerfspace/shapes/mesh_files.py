"""A user's mesh files (OBJ, PLY, STL, GLB, glTF, through trimesh) read into a `MeshObject`.

The mesh is normalised into the canonical frame (`nerfspace.frames.FileFrame`: its up axis turned onto
+z, its bounding box centred, its longest side 1.0), recorded so the transform can be undone. Colours:
vertex or face colours; a base-colour texture with UV coordinates (glTF: times the material's
baseColorFactor, as its spec says; OBJ: as it is, as Blender reads it, Kd only without a texture); else
the material's colour; else grey.

Every file a mesh names (an OBJ's material libraries and their texture maps, a glTF's buffers and images)
must lie inside the mesh's folder; a missing colour texture is an error, not a grey mesh.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import torch

from nerfspace.errors import FileFormatError, InputError, UnsafeFileError, access_error
from nerfspace.frames import FileFrame, file_frame
from nerfspace.shapes.mesh import MeshObject

MESH_SUFFIXES = (".obj", ".ply", ".stl", ".glb", ".gltf")
DEFAULT_ALBEDO = 0.7  # grey of a mesh without colours
MAX_MESH_BYTES = 512 << 20
MAX_FACES = 2_000_000
MAX_TEXTURE_PIXELS = 8192 * 8192


def _inside(folder: Path, name: str, owner: Path) -> Path:
    """``name`` resolved in ``folder``; an `UnsafeFileError` if it leaves the folder."""
    target = (folder / name).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise UnsafeFileError(f"{owner}: names {name!r}, which lies outside its folder")
    return target


def _obj_references(path: Path) -> list[Path]:
    """The material libraries an OBJ file names and the texture maps they name (colour maps must exist)."""
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("mtllib "):
            mtl = _inside(path.parent, line[7:].strip(), path)
            if not mtl.is_file():
                raise FileFormatError(f"{path}: its material file {mtl.name!r} is missing")
            found.append(mtl)
            for entry in mtl.read_text(errors="replace").splitlines():
                key, _, rest = entry.strip().partition(" ")
                if key.startswith("map_") or key in ("bump", "disp", "decal", "refl", "norm"):
                    name = rest.split()[-1] if rest.split() else ""
                    texture = _inside(mtl.parent, name, mtl)
                    if key == "map_Kd" and not texture.is_file():
                        raise FileFormatError(f"{mtl}: its texture {name!r} is missing")
                    if texture.is_file():
                        found.append(texture)
    return found


def _gltf_references(path: Path) -> list[Path]:
    """The buffers and images a glTF file names by URI (embedded data URIs name none); each must exist."""
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: not a glTF file ({e})") from e
    found = []
    for entry in [*doc.get("buffers", []), *doc.get("images", [])]:
        uri = entry.get("uri") if isinstance(entry, dict) else None
        if isinstance(uri, str) and not uri.startswith("data:"):
            target = _inside(path.parent, unquote(uri), path)
            if not target.is_file():
                raise FileFormatError(f"{path}: the file {unquote(uri)!r} it names is missing")
            found.append(target)
    return found


def references(path: Path) -> list[Path]:
    """The files a mesh file names (they must exist and lie inside its folder)."""
    suffix = path.suffix.lower()
    return _obj_references(path) if suffix == ".obj" else _gltf_references(path) if suffix == ".gltf" else []


def _load(path: Path) -> list:
    """The triangle meshes of a file (a scene's geometries with their transforms applied)."""
    import trimesh

    try:
        loaded = trimesh.load(path, file_type=path.suffix.lower()[1:], process=False)
        parts = loaded.dump(concatenate=False) if isinstance(loaded, trimesh.Scene) else [loaded]
    except Exception as e:  # trimesh raises anything from a malformed file
        reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise FileFormatError(f"{path}: not a readable mesh ({reason})") from e
    meshes = [m for m in parts if isinstance(m, trimesh.Trimesh) and len(m.faces)]
    if not meshes:
        raise FileFormatError(f"{path}: holds no triangle faces")
    return meshes


def _factor(value, default: float = 1.0) -> np.ndarray:
    """An RGB(A) colour factor (uint8 0-255 or float 0-1) as RGB floats."""
    if value is None:
        return np.full(3, default)
    rgb = np.asarray(value, dtype=np.float64).reshape(-1)[:3]
    return rgb / 255.0 if np.asarray(value).dtype.kind in "ui" or rgb.max() > 1.0 else rgb


def _colours(path: Path, mesh) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Corner colours [F, 3, 3]; corner UVs [F, 3, 2] and the texture [H, W, 3] when the mesh has one."""
    faces, visual = mesh.faces, mesh.visual
    kind = getattr(visual, "kind", None)
    if kind == "vertex":
        return visual.vertex_colors[:, :3][faces] / 255.0, None, None
    if kind == "face":
        return np.repeat(visual.face_colors[:, None, :3] / 255.0, 3, 1), None, None
    material = getattr(visual, "material", None)
    if material is None:
        return np.full((len(faces), 3, 3), DEFAULT_ALBEDO), None, None
    pbr = hasattr(material, "baseColorTexture")
    image = material.baseColorTexture if pbr else getattr(material, "image", None)
    factor = _factor(material.baseColorFactor if pbr else getattr(material, "diffuse", None), DEFAULT_ALBEDO)
    base = np.broadcast_to(factor, (len(faces), 3, 3))
    uv = getattr(visual, "uv", None)
    if image is None or uv is None or len(uv) != len(mesh.vertices):
        return base, None, None
    if image.size[0] * image.size[1] > MAX_TEXTURE_PIXELS:
        raise InputError(f"{path}: texture of {image.size[0]}x{image.size[1]} pixels is over the cap")
    texture = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0 * (factor if pbr else 1.0)
    return base, np.asarray(uv, dtype=np.float64)[faces], texture


def read_mesh(path: Path, up: str = "y", frame: FileFrame | None = None) -> tuple[MeshObject, FileFrame]:
    """The mesh of a file in the canonical frame, and the frame: ``frame`` if given, else the one that
    normalises it (``up`` onto +z, centred, longest side 1.0)."""
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(f"{path}: not a mesh file ({', '.join(MESH_SUFFIXES)})")
    try:
        size = path.stat().st_size
        if size > MAX_MESH_BYTES:
            raise InputError(f"{path}: {size} bytes, over the cap of {MAX_MESH_BYTES} for a mesh file")
        references(path)
        meshes = _load(path)
    except PermissionError as e:
        raise access_error(e) from e
    faces_total = sum(len(m.faces) for m in meshes)
    if faces_total > MAX_FACES:
        raise InputError(f"{path}: {faces_total} faces, over the cap of {MAX_FACES}")
    verts, faces, colors, uvs, tex_ids, textures, offset = [], [], [], [], [], [], 0
    for m in meshes:
        v, f = np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64)
        if not np.isfinite(v).all():
            raise FileFormatError(f"{path}: vertex coordinates hold NaN or Inf")
        if f.min() < 0 or f.max() >= len(v):
            raise FileFormatError(f"{path}: a face names a vertex that does not exist")
        base, uv, texture = _colours(path, m)
        verts.append(v)
        faces.append(f + offset)
        colors.append(base)
        uvs.append(np.zeros((len(f), 3, 2)) if uv is None else uv)
        tex_ids.append(np.full(len(f), -1 if texture is None else len(textures)))
        if texture is not None:
            textures.append(texture)
        offset += len(v)
    vertices = np.concatenate(verts)
    frame = frame or file_frame(vertices, up, path)
    canonical = frame.apply(vertices)

    def t(a, dtype=torch.float32):
        return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)

    obj = MeshObject(
        t(canonical),
        t(np.concatenate(faces), torch.int64),
        t(np.clip(np.concatenate(colors), 0, 1)),
        t(np.concatenate(uvs)),
        t(np.concatenate(tex_ids), torch.int64),
        tuple(t(x) for x in textures),
    )
    return obj, frame
