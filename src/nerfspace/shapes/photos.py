"""Posed photos as ground truth: a scene folder in the NeRF-synthetic or nerfstudio ``transforms.json``
convention (OpenGL camera axes: the camera looks down its -z, +y up; world +z up unless ``up`` says
otherwise), brought into the canonical frame.

Read: ``transforms.json`` (frames whose index is 7 mod 8 held out), or ``transforms_train.json`` with
``transforms_test.json`` (held out) beside it. Intrinsics from ``camera_angle_x`` (the image width's
field of view) or ``fl_x``/``fl_y``/``cx``/``cy`` (per file or per frame); one pinhole camera, square
pixels, principal point at the centre, so each image is cropped to its central square. Images: RGBA with
alpha composited over white, or RGB on white or on a stated background colour that is turned white.
Every image path must lie inside the scene folder.

Frame: the point nearest to every camera's optical axis and the cameras' mean distance to it give a
rough frame; the visual hull of the foreground in that frame gives the object's box, which is centred
with its longest side 1.0 (`FileFrame`, like meshes), the cameras moved with it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from nerfspace.archs import SCENE_BOX
from nerfspace.errors import FileFormatError, InputError, UnsafeFileError, access_error
from nerfspace.frames import FILE_HALF, FileFrame
from nerfspace.render import Cameras, cell_centers, visual_hull

TRANSFORMS = ("transforms.json", "transforms_train.json")
HOLD_OUT_EVERY = 8
STORED_SIZE = 256  # images are kept at most this large (the fit resizes them to its own size)
MAX_FRAMES = 2000
MAX_PIXELS = 50_000_000  # per image
HULL_RES = 48  # visual-hull grid of the framing step
HULL_SIZE = 64  # image size of the framing step
ROUGH_RADIUS = 2.0  # the cameras' mean distance in the rough frame
ROUGH_HALF = 1.2  # the rough frame's hull grid spans +-this


@dataclass(frozen=True, eq=False)
class Photos:
    """A posed photo capture in the canonical frame: ``images`` [V, S, S, 3] (white background),
    ``c2w`` [V, 3, 4], ``focal`` in pixels of the S-pixel images, ``test`` the held-out frames."""

    images: Tensor
    c2w: Tensor
    focal: float
    test: tuple[int, ...]

    def cameras(self, size: int) -> tuple[Cameras, Cameras]:
        """Training and held-out cameras at ``size`` pixels."""
        f = self.focal * size / self.images.shape[1]
        train = [i for i in range(len(self.c2w)) if i not in self.test]
        return Cameras(self.c2w[train], f, size), Cameras(self.c2w[list(self.test)], f, size)

    def render(self, cams: Cameras) -> Tensor:
        """The photos of the frames ``cams`` were made from (`cameras`), resized to ``cams.size``."""
        index = []
        for c in cams.c2w:
            match = torch.nonzero((self.c2w == c).flatten(1).all(1)).flatten()
            if not len(match):
                raise ValueError("a camera that is not one of the photos'")
            index.append(int(match[0]))
        img = self.images[index].permute(0, 3, 1, 2)
        if cams.size != img.shape[-1]:
            img = torch.nn.functional.interpolate(
                img, size=cams.size, mode="area" if cams.size < img.shape[-1] else "bilinear"
            )
        return img.permute(0, 2, 3, 1).contiguous()


def scene_folders(path: Path) -> list[Path]:
    """Scene folders (holding a `TRANSFORMS` file) at or under ``path``, sorted."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a folder (a scene folder holds transforms.json and its images)")
    found = sorted({p.parent for name in TRANSFORMS for p in path.rglob(name)})
    if not found:
        raise InputError(f"{path}: holds no scene (no {' or '.join(TRANSFORMS)})")
    return found


def _json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except PermissionError as e:
        raise access_error(e) from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: not a readable transforms file ({e})") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list) or not doc["frames"]:
        raise FileFormatError(f"{path}: a transforms file needs a non-empty frames list")
    if len(doc["frames"]) > MAX_FRAMES:
        raise InputError(f"{path}: {len(doc['frames'])} frames, over the cap of {MAX_FRAMES}")
    return doc


def _documents(scene: Path) -> list[tuple[Path, dict, bool]]:
    """The transforms files of a scene: (path, document, held out)."""
    if (scene / "transforms.json").is_file():
        return [(scene / "transforms.json", _json(scene / "transforms.json"), False)]
    docs = [(scene / "transforms_train.json", _json(scene / "transforms_train.json"), False)]
    if (scene / "transforms_test.json").is_file():
        docs.append((scene / "transforms_test.json", _json(scene / "transforms_test.json"), True))
    return docs


def _image_path(scene: Path, doc_path: Path, frame: dict) -> Path:
    name = frame.get("file_path")
    if not isinstance(name, str) or not name:
        raise FileFormatError(f"{doc_path}: a frame without a file_path")
    path = (scene / name).resolve()
    if not path.is_relative_to(scene.resolve()):
        raise UnsafeFileError(f"{doc_path}: names {name!r}, which lies outside the scene folder")
    if not path.suffix and not path.exists():
        path = path.with_suffix(".png")  # NeRF-synthetic leaves the extension out
    if not path.is_file():
        raise FileFormatError(f"{doc_path}: the image {name!r} is missing")
    return path


def references(scene: Path) -> list[Path]:
    """Every file a scene is made of: its transforms files, then its images in frame order."""
    out = []
    for doc_path, doc, _ in _documents(Path(scene)):
        out.append(doc_path)
        out += [_image_path(Path(scene), doc_path, f) for f in doc["frames"]]
    return out


def _number(value, what: str, doc_path: Path) -> float:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise FileFormatError(f"{doc_path}: {what} must be a positive number, got {value!r}")
    return float(value)


def _focal(doc: dict, frame: dict, width: int, height: int, doc_path: Path) -> float:
    """The focal length in pixels of one frame; the principal point must be the image's centre."""

    def get(key: str):  # per frame, else per file
        return frame.get(key, doc.get(key))

    if get("fl_x") is not None:
        fx = _number(get("fl_x"), "fl_x", doc_path)
        fy = _number(get("fl_y") if get("fl_y") is not None else fx, "fl_y", doc_path)
        if abs(fx - fy) > 0.01 * fx:
            raise InputError(
                f"{doc_path}: fl_x {fx} and fl_y {fy} differ (non-square pixels are not supported)"
            )
        for key, size in (("cx", width), ("cy", height)):
            if get(key) is not None and abs(float(get(key)) - size / 2) > 0.01 * size:
                raise InputError(f"{doc_path}: {key} {get(key)} is off the image centre (not supported)")
        return fx
    angle = _number(get("camera_angle_x"), "camera_angle_x", doc_path)
    return 0.5 * width / math.tan(0.5 * angle)


def _pose(frame: dict, doc_path: Path) -> np.ndarray:
    m = np.asarray(frame.get("transform_matrix"), dtype=object)
    try:
        m = np.array(m, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{doc_path}: a transform_matrix that is not numbers") from e
    if m.shape not in ((4, 4), (3, 4)) or not np.isfinite(m).all():
        raise FileFormatError(f"{doc_path}: a transform_matrix that is not a finite 4x4 matrix")
    rot = m[:3, :3]
    if abs(np.linalg.det(rot) - 1) > 1e-3 or np.abs(rot.T @ rot - np.eye(3)).max() > 1e-3:
        raise FileFormatError(f"{doc_path}: a transform_matrix whose rotation is singular or not a rotation")
    return m[:3, :4]


def _image(path: Path, background: tuple[float, float, float] | None) -> tuple[np.ndarray, tuple[int, int]]:
    """A photo as floats [S, S, 3] on white (central square, at most STORED_SIZE), and its full size; an RGB
    photo's pixels within 4/255 of ``background`` turn white."""
    try:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > MAX_PIXELS:
                raise InputError(f"{path}: {im.size[0]}x{im.size[1]} pixels, over the cap")
            size = im.size
            rgba = np.asarray(im.convert("RGBA"), dtype=np.float64) / 255.0
            has_alpha = "A" in im.getbands()
    except PermissionError as e:
        raise access_error(e) from e
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise FileFormatError(f"{path}: not a readable image ({e})") from e
    rgb = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]) if has_alpha else rgba[..., :3]
    if not has_alpha and background is not None:
        rgb = np.where((np.abs(rgb - np.asarray(background)).max(-1) < 4 / 255)[..., None], 1.0, rgb)
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = Image.fromarray((rgb[top : top + s, left : left + s] * 255).round().astype(np.uint8))
    if s > STORED_SIZE:
        square = square.resize((STORED_SIZE, STORED_SIZE), Image.Resampling.BOX)
    return np.asarray(square, dtype=np.float32) / 255.0, size


def _axes_centre(c2w: np.ndarray) -> np.ndarray:
    """The point nearest (least squares) to every camera's optical axis."""
    dirs = -c2w[:, :, 2] / np.linalg.norm(c2w[:, :, 2], axis=1, keepdims=True)
    proj = np.eye(3)[None] - dirs[:, :, None] * dirs[:, None, :]
    a, b = proj.sum(0), np.einsum("vij,vj->i", proj, c2w[:, :, 3])
    if np.linalg.cond(a) > 1e8:
        raise InputError("the cameras' optical axes are parallel: not a capture around an object")
    return np.linalg.solve(a, b)


def _hull_box(
    images: np.ndarray, c2w: np.ndarray, focal: float, source: Path
) -> tuple[np.ndarray, np.ndarray]:
    """The box (low, high) of the foreground's visual hull, for cameras ``c2w`` of the rough frame, over
    the cells every view sees (the object is whole in every photo of a capture around it)."""
    small = torch.nn.functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2), size=HULL_SIZE, mode="area"
    ).permute(0, 2, 3, 1)
    cams = Cameras(torch.from_numpy(c2w).float(), focal * HULL_SIZE / images.shape[1], HULL_SIZE)
    hull = visual_hull(small[None], cams, HULL_RES, half=ROUGH_HALF, min_views=len(c2w))[0]
    if not hull.any():
        raise InputError(f"{source}: no object found in the photos (is the background white or transparent?)")
    cells = cell_centers(HULL_RES).reshape(HULL_RES, HULL_RES, HULL_RES, 3)[hull].numpy() * (
        ROUGH_HALF / SCENE_BOX
    )
    cell = ROUGH_HALF / HULL_RES
    return cells.min(0) - cell, cells.max(0) + cell


def read_photos(
    scene: Path,
    up: str = "z",
    frame: FileFrame | None = None,
    background: tuple[float, float, float] | None = None,
) -> tuple[Photos, FileFrame]:
    """A scene folder's posed photos in the canonical frame, and the frame (``frame`` if given, else the
    one found from the cameras and the visual hull); ``background``: the colour (0-1) behind the object in
    RGB photos, turned white."""
    scene = Path(scene)
    images, poses, focals, sizes, held = [], [], [], set(), []
    docs = _documents(scene)
    split = len(docs) > 1  # a test file of its own, else every HOLD_OUT_EVERY-th frame
    for doc_path, doc, test in docs:
        for i, f in enumerate(doc["frames"]):
            if not isinstance(f, dict):
                raise FileFormatError(f"{doc_path}: frame {i} is not an object")
            pose = _pose(f, doc_path)
            img, size = _image(_image_path(scene, doc_path, f), background)
            sizes.add(size)
            if len(sizes) > 1:
                raise InputError(
                    f"{doc_path}: images of mixed sizes ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))})"
                )
            focals.append(_focal(doc, f, *size, doc_path))
            held.append(test if split else len(poses) % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1)
            images.append(img)
            poses.append(pose)
    if len(images) < 4:
        raise InputError(f"{scene}: {len(images)} frames; a capture needs at least 4")
    w, h = sizes.pop()
    if max(focals) > 1.01 * min(focals):
        raise InputError(f"{scene}: frames of different focal lengths ({min(focals):g} to {max(focals):g})")
    focal = focals[0] * images[0].shape[0] / min(w, h)  # in pixels of the stored square
    c2w = np.stack(poses)
    rot_up = FileFrame.kept(up).rotation()
    if frame is None:
        centre = _axes_centre(c2w)
        rough = ROUGH_RADIUS / np.linalg.norm(c2w[:, :, 3] - centre, axis=1).mean()
        rough_c2w = np.concatenate(
            [rot_up @ c2w[:, :, :3], (rough * (c2w[:, :, 3] - centre) @ rot_up.T)[..., None]], 2
        )
        low, high = _hull_box(np.stack(images), rough_c2w, focal, scene)
        box_centre = centre + rot_up.T @ ((low + high) / 2) / rough
        scale = float(2 * FILE_HALF * rough / (high - low).max())
        frame = FileFrame(up, tuple(float(c) for c in box_centre), scale)
    moved = np.concatenate([frame.rotation() @ c2w[:, :, :3], frame.apply(c2w[:, :, 3])[..., None]], 2)
    if (np.abs(moved[:, :, 3]) < SCENE_BOX).all(1).any():
        raise InputError(f"{scene}: a camera lies inside the object's box (not a capture around an object)")
    photos = Photos(
        torch.from_numpy(np.stack(images)),
        torch.from_numpy(moved).float(),
        focal,
        tuple(i for i, t in enumerate(held) if t),
    )
    return photos, frame


def write_scene(
    folder: Path, rgba: Tensor, cams: Cameras, world: tuple[float, np.ndarray] = (1.0, np.zeros(3))
) -> None:
    """A NeRF-synthetic scene folder: ``rgba`` [V, H, W, 4] in [0, 1] as ``r_<i>.png`` and a
    ``transforms.json`` of ``cams``, whose positions are scaled and shifted by ``world`` (scale, shift)."""
    from nerfspace.atomic import atomic_write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(len(cams)):
        Image.fromarray((rgba[i].numpy() * 255).round().astype(np.uint8), "RGBA").save(folder / f"r_{i}.png")
        m = cams.c2w[i].double().numpy().copy()
        m[:, 3] = m[:, 3] * world[0] + world[1]
        frames.append({"file_path": f"./r_{i}", "transform_matrix": [*m.tolist(), [0.0, 0.0, 0.0, 1.0]]})
    angle = 2 * math.atan(cams.size / 2 / cams.focal)
    atomic_write_json(folder / "transforms.json", {"camera_angle_x": angle, "frames": frames})
