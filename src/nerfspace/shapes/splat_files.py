"""A user's Gaussian splats and point clouds read into `Splats`, normalised like meshes (`FileFrame`).

Splats: the common 3DGS PLY layout, a ``vertex`` element with ``x y z``, ``scale_0..2`` (log standard
deviations), ``rot_0..3`` (a quaternion, w first), ``opacity`` (a logit) and ``f_dc_0..2`` (the
degree-0 spherical-harmonic colour: rgb = 0.5 + SH_C0 * f_dc); higher SH bands are ignored (colours
are taken as view-independent). Point clouds: a PLY whose ``vertex`` element has ``x y z`` and maybe
``red green blue`` (0-255 or 0-1), and no faces; or a text file of rows ``x y z`` or ``x y z r g b``.
Each point becomes a round Gaussian whose standard deviation is POINT_RADIUS times its mean distance to
its POINT_NEIGHBOURS nearest points, opaque, so a scan renders as a closed surface where it is dense.

Sizes declared in a PLY header are checked against the caps and against the file's length before
anything is allocated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nerfspace.errors import FileFormatError, InputError, access_error
from nerfspace.frames import FileFrame, file_frame
from nerfspace.shapes.splats import Splats

SPLAT_SUFFIXES = (".ply",)
POINT_SUFFIXES = (".ply", ".xyz", ".txt", ".pts")
SH_C0 = 0.28209479177387814
MAX_POINTS = 5_000_000
MAX_HEADER_BYTES = 64 << 10
POINT_NEIGHBOURS = 4
POINT_RADIUS = 0.5
DEFAULT_COLOR = 0.7
_PLY_TYPES = {
    "char": "i1", "uchar": "u1", "short": "i2", "ushort": "u2", "int": "i4", "uint": "u4",
    "float": "f4", "double": "f8", "int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2",
    "int32": "i4", "uint32": "u4", "float32": "f4", "float64": "f8",
}  # fmt: skip
_SPLAT_KEYS = ("x", "y", "z", "opacity", *(f"scale_{i}" for i in range(3)), *(f"rot_{i}" for i in range(4)))


def _header(path: Path, data: bytes) -> tuple[str, list[tuple[str, int, list[tuple[str, str]]]], int]:
    """A PLY header: format, elements (name, count, [(property, dtype)]) and the body's offset."""
    end = data.find(b"end_header", 0, MAX_HEADER_BYTES)
    if not data.startswith(b"ply") or end < 0:
        raise FileFormatError(f"{path}: not a PLY file")
    body = data.index(b"\n", end) + 1
    fmt, elements = "", []
    for line in data[:end].decode("ascii", errors="replace").splitlines()[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append((words[1], int(words[2]), []))
        elif words[0] == "property" and elements and len(words) == 3 and words[1] in _PLY_TYPES:
            elements[-1][2].append((words[2], _PLY_TYPES[words[1]]))
        elif words[0] == "property" and elements and words[1] == "list":
            elements[-1][2].append((words[-1], "list"))
        else:
            raise FileFormatError(f"{path}: unreadable PLY header line {line[:60]!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise FileFormatError(f"{path}: unknown PLY format {fmt!r}")
    return fmt, elements, body


def read_ply_vertices(path: Path) -> dict[str, np.ndarray]:
    """The properties of a PLY file's ``vertex`` element; faces must be absent (that is a mesh)."""
    try:
        data = Path(path).read_bytes()
    except PermissionError as e:
        raise access_error(e) from e
    fmt, elements, body = _header(path, data)
    counts = {name: n for name, n, _ in elements}
    if counts.get("face", 0):
        raise InputError(f"{path}: holds faces, so it is a mesh: use nerfspace fit mesh")
    names = [name for name, _, _ in elements]
    if "vertex" not in names:
        raise FileFormatError(f"{path}: a PLY without a vertex element")
    before, (_, n, props) = elements[: names.index("vertex")], elements[names.index("vertex")]
    if n > MAX_POINTS:
        raise InputError(f"{path}: declares {n} vertices, over the cap of {MAX_POINTS}")
    if any(t == "list" for _, _, p in elements[: names.index("vertex") + 1] for _, t in p):
        raise FileFormatError(f"{path}: a list property in or before the vertex element")
    if any(m > MAX_POINTS for _, m, _ in before):
        raise InputError(f"{path}: an element of more than {MAX_POINTS} rows before the vertices")
    if fmt == "ascii":
        skip = sum(m for _, m, _ in before)  # one line per row of the elements before the vertices
        try:
            lines = data[body:].decode("ascii").splitlines()[skip : skip + n]
            rows = np.loadtxt(lines, dtype=np.float64, ndmin=2)
        except (ValueError, UnicodeDecodeError) as e:
            raise FileFormatError(f"{path}: unreadable PLY body ({str(e)[:80]})") from e
        if rows.shape != (n, len(props)):
            raise FileFormatError(f"{path}: the PLY body does not hold {n} rows of {len(props)} values")
        return {name: rows[:, i] for i, (name, _) in enumerate(props)}
    order = "<" if fmt == "binary_little_endian" else ">"
    offset = body + sum(m * np.dtype([(k, order + t) for k, t in p]).itemsize for _, m, p in before)
    dtype = np.dtype([(name, order + t) for name, t in props])
    if len(data) - offset < n * dtype.itemsize:
        raise FileFormatError(f"{path}: truncated ({n} vertices declared, the file is shorter)")
    table = np.frombuffer(data, dtype, count=n, offset=offset)
    return {name: table[name].astype(np.float64) for name, _ in props}


def _finite(path: Path, columns: dict[str, np.ndarray], keys) -> None:
    if not all(np.isfinite(columns[k]).all() for k in keys):
        raise FileFormatError(f"{path}: NaN or Inf values")


def is_splat_ply(columns: dict[str, np.ndarray]) -> bool:
    """A PLY vertex element in the 3DGS layout."""
    return all(k in columns for k in (*_SPLAT_KEYS, "f_dc_0", "f_dc_1", "f_dc_2"))


def read_splats(path: Path, up: str = "y", frame: FileFrame | None = None) -> tuple[Splats, FileFrame]:
    """Gaussian splats of a 3DGS PLY file in the canonical frame, and the frame: ``frame`` if given, else
    the one that normalises them (as `read_mesh`)."""
    path = Path(path)
    columns = read_ply_vertices(path)
    if not is_splat_ply(columns):
        kind = "a point cloud: use nerfspace import points" if "x" in columns else "neither"
        raise InputError(f"{path}: not a Gaussian splat PLY (no scale_*, rot_*, opacity, f_dc_*: {kind})")
    _finite(path, columns, (*_SPLAT_KEYS, "f_dc_0", "f_dc_1", "f_dc_2"))
    means = np.stack([columns[k] for k in "xyz"], 1)
    frame = frame or file_frame(means, up, path)
    rot = torch.tensor(frame.rotation(), dtype=torch.float64)
    quats = torch.from_numpy(np.stack([columns[f"rot_{i}"] for i in range(4)], 1))
    if (quats.norm(dim=1) == 0).any():
        raise FileFormatError(f"{path}: a Gaussian with a zero rotation quaternion")
    scales = torch.from_numpy(np.exp(np.stack([columns[f"scale_{i}"] for i in range(3)], 1)))
    colors = 0.5 + SH_C0 * np.stack([columns[f"f_dc_{i}"] for i in range(3)], 1)
    splats = Splats.from_scales(
        torch.from_numpy(frame.apply(means)).float(),
        (scales * frame.scale).float(),
        quats.float(),
        torch.sigmoid(torch.from_numpy(columns["opacity"])).float(),
        torch.from_numpy(np.clip(colors, 0, 1)).float(),
    )
    turned = rot.float() @ splats.covariances @ rot.T.float()  # the frame's rotation turns them too
    return Splats(splats.means, turned, splats.opacities, splats.colors), frame


def _text_points(path: Path) -> np.ndarray:
    """Rows ``x y z`` or ``x y z r g b`` of a text file, at most MAX_POINTS."""
    try:
        with open(path) as f:
            rows = np.loadtxt(f, dtype=np.float64, ndmin=2, max_rows=MAX_POINTS + 1, comments="#")
    except PermissionError as e:
        raise access_error(e) from e
    except (ValueError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: not a point cloud of rows x y z [r g b] ({str(e)[:80]})") from e
    if len(rows) > MAX_POINTS:
        raise InputError(f"{path}: more than {MAX_POINTS} points, over the cap")
    if rows.shape[1] not in (3, 6):
        raise FileFormatError(f"{path}: rows of {rows.shape[1]} values; expected x y z or x y z r g b")
    return rows


def read_points(path: Path, up: str = "y", frame: FileFrame | None = None) -> tuple[Splats, FileFrame]:
    """A point cloud (PLY, or text rows) as round opaque Gaussians in the canonical frame, and the frame
    (as `read_splats`)."""
    from scipy.spatial import cKDTree

    path = Path(path)
    if path.suffix.lower() == ".ply":
        columns = read_ply_vertices(path)
        if not all(k in columns for k in "xyz"):
            raise InputError(f"{path}: neither a Gaussian splat nor a point cloud (no x, y, z)")
        rgb = ("red", "green", "blue") if all(k in columns for k in ("red", "green", "blue")) else ()
        rows = np.stack([columns[k] for k in ("x", "y", "z", *rgb)], 1)
    else:
        rows = _text_points(path)
    if not np.isfinite(rows).all():
        raise FileFormatError(f"{path}: NaN or Inf values")
    if len(rows) <= POINT_NEIGHBOURS:
        raise InputError(f"{path}: {len(rows)} points; a point cloud needs more than {POINT_NEIGHBOURS}")
    frame = frame or file_frame(rows[:, :3], up, path)
    points = frame.apply(rows[:, :3])
    dist, _ = cKDTree(points).query(points, POINT_NEIGHBOURS + 1)
    radius = POINT_RADIUS * dist[:, 1:].mean(1)
    if rows.shape[1] == 6:
        rgb = rows[:, 3:]
        colors = rgb / 255.0 if rgb.max() > 1.0 else rgb
    else:
        colors = np.full((len(rows), 3), DEFAULT_COLOR)
    n = len(points)
    cov = torch.eye(3).expand(n, 3, 3) * torch.from_numpy(radius**2).float()[:, None, None]
    return Splats(
        torch.from_numpy(points).float(),
        cov.contiguous(),
        torch.ones(n),
        torch.from_numpy(np.clip(colors, 0, 1)).float(),
    ), frame


def _write_ply(path: Path, columns: dict[str, np.ndarray], types: dict[str, str]) -> None:
    """A binary little-endian PLY with one vertex element of ``columns`` (written atomically)."""
    from nerfspace.atomic import atomic_write_bytes

    n = len(next(iter(columns.values())))
    names = {"f4": "float", "u1": "uchar"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {names[types[k]]} {k}" for k in columns]
    table = np.empty(n, np.dtype([(k, "<" + types[k]) for k in columns]))
    for k, v in columns.items():
        table[k] = v
    atomic_write_bytes(Path(path), ("\n".join([*header, "end_header"]) + "\n").encode() + table.tobytes())


def write_splats(path: Path, means, scales, rotations, opacities, colors) -> None:
    """Gaussians (``scales``: standard deviations; ``opacities`` and ``colors`` in (0, 1)) as a 3DGS PLY."""
    cols = {k: np.asarray(means)[:, i] for i, k in enumerate("xyz")}
    cols |= {f"f_dc_{i}": (np.asarray(colors)[:, i] - 0.5) / SH_C0 for i in range(3)}
    op = np.clip(np.asarray(opacities, dtype=np.float64), 1e-6, 1 - 1e-6)
    cols["opacity"] = np.log(op / (1 - op))
    cols |= {f"scale_{i}": np.log(np.asarray(scales)[:, i]) for i in range(3)}
    cols |= {f"rot_{i}": np.asarray(rotations)[:, i] for i in range(4)}
    _write_ply(path, cols, dict.fromkeys(cols, "f4"))


def write_points(path: Path, points, colors=None) -> None:
    """A point cloud as a PLY (``x y z``, and ``red green blue`` bytes when ``colors`` in [0, 1] given)."""
    cols = {k: np.asarray(points)[:, i] for i, k in enumerate("xyz")}
    types = dict.fromkeys(cols, "f4")
    if colors is not None:
        rgb = np.round(np.clip(np.asarray(colors), 0, 1) * 255)
        cols |= {k: rgb[:, i] for i, k in enumerate(("red", "green", "blue"))}
        types |= {"red": "u1", "green": "u1", "blue": "u1"}
    _write_ply(path, cols, types)
