"""The 13 object categories as seeded parametric assemblies of SDF primitives.

Every object is a pure function of (category, seed): shape draws come from
``numpy.random.default_rng([category index, seed])`` and colours from an independent stream
``default_rng([category index, seed, 1])`` with the same distribution for every category, so colour never
reveals the class. Builders work in a canonical frame (+z up, ground at z = 0, front towards +x) in
roughly metre-like units; `Assembly.placed` then centres, scales and yaws the result. Furniture shares
parts (seats, legs, backs, pedestals, boxes, flat panels) across categories on purpose.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Sequence

import numpy as np

from nerfspace.errors import InputError
from nerfspace.shapes.sdf import Assembly, Clip, SDFObject, Vec, along, rot_x, rot_y

CATEGORIES: tuple[str, ...] = (
    "airplane",
    "bench",
    "cabinet",
    "car",
    "chair",
    "display",
    "lamp",
    "speaker",
    "rifle",
    "sofa",
    "table",
    "phone",
    "watercraft",
)
MAX_YAW = np.radians(20.0)
LONGEST = (1.0, 1.15)  # range of the longest side of a placed object (scene units)
BLEND = {"sofa": 0.02, "car": 0.01}  # smooth-union width per category (scene units); default below
DEFAULT_BLEND = 0.004

# Colour roles of parts (each maps into the object's palette of 1-3 colours).
MAIN, SECOND, ACCENT = 0, 1, 2


class Draw:
    """Seeded draws for one object."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def u(self, lo: float, hi: float) -> float:
        """Uniform float in [lo, hi)."""
        return float(self.rng.uniform(lo, hi))

    def i(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return int(self.rng.integers(lo, hi + 1))

    def coin(self, p: float = 0.5) -> bool:
        """True with probability ``p``."""
        return bool(self.rng.random() < p)

    def pick(self, options: Sequence):
        """One of ``options``, uniformly."""
        return options[int(self.rng.integers(len(options)))]


def random_palette(rng: np.random.Generator) -> np.ndarray:
    """1-3 random colours [n, 3] with channels in [0.1, 0.9] (never the white background)."""
    n = int(rng.integers(1, 4))
    hsv = np.stack([rng.random(n), rng.uniform(0.0, 0.85, n), rng.uniform(0.3, 0.9, n)], axis=1)
    return np.clip([colorsys.hsv_to_rgb(*c) for c in hsv], 0.1, 0.9)


def make_object(category: str, seed: int) -> SDFObject:
    """The object ``seed`` (an integer >= 0) of ``category``; a pure function of both."""
    if category not in CATEGORIES:
        raise InputError(f"unknown category {category!r}; valid categories: {', '.join(CATEGORIES)}")
    if int(seed) != seed or seed < 0:
        raise InputError(f"object seed must be an integer >= 0, got {seed!r}")
    index, seed = CATEGORIES.index(category), int(seed)
    draw = Draw(np.random.default_rng([index, seed]))
    assembly = BUILDERS[category](draw)
    blend = BLEND.get(category, DEFAULT_BLEND)
    # The smooth union swells coplanar faces by up to blend * ln(parts sharing them); keep a margin for it.
    placed = assembly.placed(draw.u(*LONGEST), draw.u(-MAX_YAW, MAX_YAW), max_half=0.58 - 2 * blend)
    palette = random_palette(np.random.default_rng([index, seed, 1]))
    return placed.to_object(category, seed, palette, blend)


# ---------------------------------------------------------------------------------------------------------
# Shared parts


def _keep_side(p: Vec, q: Vec, keep: Vec) -> Clip:
    """Half-space bounded by the plane through ``p`` and ``q`` that contains the y axis direction, on the
    side of point ``keep`` (for cuts in the xz plane: sails, tapers)."""
    p, q, keep = (np.asarray(v, dtype=float) for v in (p, q, keep))
    v = q - p
    n = np.array([-v[2], 0.0, v[0]])
    return (n if (keep - p) @ n <= 0 else -n), p


def _legs(
    a: Assembly,
    r: Draw,
    xs: Sequence[float],
    ys: Sequence[float],
    top: float,
    color: int,
    stretchers: bool = True,
) -> None:
    """Legs from the floor to height ``top`` at every (x, y) of ``xs`` x ``ys``, all in one style."""
    style = r.pick(("beam", "rod", "taper"))
    w = r.u(0.016, 0.035)
    splay = r.u(0.02, 0.06) if stretchers and r.coin(0.3) else 0.0

    def at(x: float, y: float, z: float) -> np.ndarray:
        return np.array([x + splay * np.sign(x) * (1 - z / top), y + splay * np.sign(y) * (1 - z / top), z])

    for x in xs:
        for y in ys:
            if style == "beam":
                a.beam(at(x, y, 0), at(x, y, top), w, color)
            elif style == "rod":
                a.rod(at(x, y, 0), at(x, y, top), w, color)
            else:
                a.cone(at(x, y, 0), at(x, y, top), 0.5 * w, 1.3 * w, color)
    if stretchers and r.coin(0.35):
        z = top * r.u(0.15, 0.35)
        for y in (ys[0], ys[-1]):
            a.rod(at(xs[0], y, z), at(xs[-1], y, z), 0.5 * w, color)
        for x in (xs[0], xs[-1]):
            a.rod(at(x, ys[0], z), at(x, ys[-1], z), 0.5 * w, color)


def _pedestal(a: Assembly, r: Draw, top: float, color: int, x: float = 0.0) -> None:
    """Central column up to ``top`` on a star (with casters), disc or cross foot."""
    foot, reach = r.pick(("star", "disc", "cross")), r.u(0.16, 0.28)
    if foot == "star":
        spokes = r.i(4, 5)
        for k in range(spokes):
            ang = 2 * np.pi * k / spokes + 0.3
            end = np.array([x + reach * np.cos(ang), reach * np.sin(ang), 0.035])
            a.beam((x, 0, 0.06), end, 0.016, color)
            a.sphere(end - [0, 0, 0.01], 0.025, SECOND)
    elif foot == "disc":
        a.cylinder((x, 0, 0.02), reach, 0.02, color=color)
    else:
        a.box((x, 0, 0.02), (reach, 0.025, 0.02), color, radius=0.01)
        a.box((x, 0, 0.02), (0.025, reach, 0.02), color, radius=0.01)
    a.rod((x, 0, 0.03), (x, 0, top), r.u(0.02, 0.05), color)


def _sled(a: Assembly, r: Draw, hx: float, hy: float, top: float, color: int) -> None:
    """Two tubular U frames under a seat (cantilever-style support)."""
    radius = r.u(0.008, 0.016)
    for y in (-0.9 * hy, 0.9 * hy):
        pts = [(0.9 * hx, y, top), (1.1 * hx, y, radius), (-1.1 * hx, y, radius), (-0.9 * hx, y, top)]
        for p, q in zip(pts, pts[1:], strict=False):
            a.capsule(p, q, radius, color)


def _back(
    a: Assembly, r: Draw, x0: float, hy: float, z0: float, height: float, tilt: float, color: int
) -> None:
    """Backrest standing on the rear edge (``x0``, ``z0``) of a seat, leaning back by ``tilt`` radians."""
    th = r.u(0.012, 0.03)
    up, rot = np.array([-np.sin(tilt), 0.0, np.cos(tilt)]), rot_y(-tilt)

    def at(s: float, y: float = 0.0) -> np.ndarray:
        return np.array([x0 + th, y, z0]) + s * up

    style = r.pick(("solid", "solid", "slats", "spindles", "frame"))
    if style == "solid":
        a.box(at(height / 2), (th, hy, height / 2), color, rot, radius=r.u(0.0, th))
        return
    pw = r.u(0.012, 0.025)
    for y in (pw - hy, hy - pw):
        a.beam(at(0, y), at(height, y), pw, color)
    if style == "slats":
        n, sh = r.i(2, 4), r.u(0.025, 0.05)
        for k in range(n):
            a.box(at(height - sh - k * 0.8 * height / n), (0.8 * th, hy - pw, sh), color, rot)
    elif style == "spindles":
        rail = r.u(0.02, 0.05)
        a.box(at(height - rail), (th, hy, rail), color, rot)
        for y in np.linspace(pw - hy, hy - pw, r.i(3, 7) + 2)[1:-1]:
            a.rod(at(0, y), at(height - rail, y), 0.6 * pw, color)
    else:
        rail = r.u(0.04, 0.1)
        a.box(at(height - rail), (th, hy, rail), color, rot, radius=r.u(0.0, th))


def _armrests(a: Assembly, r: Draw, x0: float, x1: float, hy: float, z0: float, color: int) -> None:
    """Two armrests over the seat sides (x from ``x0`` to ``x1``) on posts or panels."""
    top, w = z0 + r.u(0.15, 0.25), r.u(0.015, 0.035)
    panel = r.coin(0.3)
    for y in (-hy, hy):
        a.box(((x0 + x1) / 2 + 0.01, y, top), ((x1 - x0) / 2, w, 0.8 * w), color, radius=0.5 * w)
        if panel:
            a.box(((x0 + x1) / 2, y, (z0 + top) / 2), (0.45 * (x1 - x0), 0.6 * w, (top - z0) / 2), color)
        else:
            a.rod((x1 - 0.03, y, z0), (x1 - 0.03, y, top), 0.7 * w, color)


def _panel_grid(
    a: Assembly,
    r: Draw,
    x: float,
    ys: tuple[float, float],
    zs: tuple[float, float],
    cols: int,
    rows: int,
    drawer: bool,
) -> None:
    """Doors or drawer fronts tiling the face ``x`` over ``ys`` x ``zs``, each with a handle or knob."""
    gap, color = 0.014, r.pick((MAIN, SECOND))
    w, h = (ys[1] - ys[0]) / cols, (zs[1] - zs[0]) / rows
    knob = r.coin(0.35)
    for i in range(cols):
        for j in range(rows):
            y, z = ys[0] + (i + 0.5) * w, zs[0] + (j + 0.5) * h
            a.box((x + 0.006, y, z), (0.006, w / 2 - gap / 2, h / 2 - gap / 2), color)
            hy, hz = (y, z + 0.25 * h) if drawer else (y + (0.35 * w if i < cols / 2 else -0.35 * w), z)
            if knob:
                a.sphere((x + 0.02, hy, hz), 0.015, ACCENT)
            elif drawer:
                a.capsule((x + 0.024, hy - 0.2 * w, hz), (x + 0.024, hy + 0.2 * w, hz), 0.008, ACCENT)
            else:
                a.capsule((x + 0.024, hy, hz - 0.15 * h), (x + 0.024, hy, hz + 0.15 * h), 0.008, ACCENT)


def _driver(a: Assembly, x: float, y: float, z: float, radius: float) -> None:
    """Loudspeaker driver on a front face at ``x``: cone disc, surround ring and dust cap."""
    a.cylinder((x + 0.004, y, z), radius, 0.004, axis="x", color=ACCENT)
    a.torus((x + 0.006, y, z), radius, 0.12 * radius, axis="x", color=SECOND)
    a.sphere((x, y, z), 0.35 * radius, SECOND)


def _planform(
    a: Assembly,
    root: Vec,
    span_dir: Vec,
    chord_root: float,
    chord_tip: float,
    span: float,
    sweep: float,
    half_thick: float,
    color: int,
) -> None:
    """Flat tapered, swept surface (wing, stabiliser, fin): leading edge starts at ``root`` and runs
    along ``span_dir`` (perpendicular to x) swept back by ``sweep`` radians; chords are along -x."""
    ex, es = np.array([1.0, 0.0, 0.0]), np.asarray(span_dir, dtype=float) / np.linalg.norm(span_dir)
    root = np.asarray(root, dtype=float)
    tan_le = np.tan(sweep)
    tip_le = -span * tan_le
    lo, hi = min(-chord_root, tip_le - chord_tip), max(0.0, tip_le)
    tan_te = (span * tan_le + chord_tip - chord_root) / span
    clips = [(ex + tan_le * es, root), (-(ex + tan_te * es), root - chord_root * ex)]
    a.box(
        root + (lo + hi) / 2 * ex + span / 2 * es,
        ((hi - lo) / 2, span / 2, half_thick),
        color,
        np.column_stack([ex, es, np.cross(ex, es)]),
        clips=clips,
    )


def _raked_box(
    a: Assembly,
    x: tuple[float, float],
    half_y: float,
    z: tuple[float, float],
    rakes: tuple[float, float],
    color: int,
    radius: float = 0.0,
    inset: float = 0.0,
) -> None:
    """Box over ``x`` x [-half_y, half_y] x ``z`` whose front and rear faces lean in by ``rakes``
    (radians from vertical), moved inwards by ``inset``: car cabins, boat cabins, their windows."""
    front = np.array([np.cos(rakes[0]), 0.0, np.sin(rakes[0])])
    rear = np.array([-np.cos(rakes[1]), 0.0, np.sin(rakes[1])])
    clips = [(front, (x[1] - inset, 0, z[0])), (rear, (x[0] + inset, 0, z[0]))]
    a.box(
        ((x[0] + x[1]) / 2, 0, (z[0] + z[1]) / 2),
        ((x[1] - x[0]) / 2, half_y, (z[1] - z[0]) / 2),
        color,
        radius=radius,
        clips=clips,
    )


# ---------------------------------------------------------------------------------------------------------
# Seating: chair, bench, sofa


def _chair(r: Draw) -> Assembly:
    a = Assembly()
    hx, hy, h, t = r.u(0.2, 0.27), r.u(0.21, 0.28), r.u(0.4, 0.5), r.u(0.03, 0.08)
    a.box((0, 0, h - t / 2), (hx, hy, t / 2), MAIN, radius=r.u(0.0, 0.025))
    base, inset = r.pick(("legs", "legs", "legs", "pedestal", "sled")), r.u(0.015, 0.05)
    if base == "legs":
        _legs(a, r, (inset - hx, hx - inset), (inset - hy, hy - inset), h - t, SECOND)
    elif base == "pedestal":
        _pedestal(a, r, h - t, SECOND)
    else:
        _sled(a, r, hx, hy, h - t, SECOND)
    _back(a, r, -hx, hy, h, r.u(0.3, 0.55), r.u(0.0, 0.3), r.pick((MAIN, ACCENT)))
    if r.coin(0.35):
        _armrests(a, r, -hx, hx, hy, h, SECOND)
    return a


def _bench(r: Draw) -> Assembly:
    a = Assembly()
    hx, hy, h, t = r.u(0.15, 0.23), r.u(0.5, 0.75), r.u(0.38, 0.48), r.u(0.03, 0.07)
    if r.coin(0.5):
        n, gap = r.i(3, 6), r.u(0.01, 0.025)
        w = (2 * hx - (n - 1) * gap) / n
        for k in range(n):
            a.box((-hx + w / 2 + k * (w + gap), 0, h - t / 2), (w / 2, hy, t / 2), MAIN)
    else:
        a.box((0, 0, h - t / 2), (hx, hy, t / 2), MAIN, radius=r.u(0.0, 0.02))
    support, inset = r.pick(("legs", "panels", "aframe")), r.u(0.02, 0.12)
    ends = (inset - hy, hy - inset)
    if support == "legs":
        _legs(a, r, (0.03 - hx, hx - 0.03), np.linspace(*ends, r.pick((2, 2, 3))), h - t, SECOND)
    elif support == "panels":
        depth, pt = hx * r.u(0.8, 1.0), r.u(0.015, 0.04)
        for y in ends:
            a.box((0, y, (h - t) / 2), (depth, pt, (h - t) / 2), SECOND)
        if r.coin(0.5):
            a.beam((0, ends[0], 0.3 * h), (0, ends[1], 0.3 * h), 0.02, SECOND)
    else:
        for y in ends:
            for sx in (-1, 1):
                a.capsule((1.1 * sx * hx, y, 0.015), (0, y, h - t), 0.018, SECOND)
    if r.coin(0.55):
        _back(a, r, -hx, hy, h, r.u(0.2, 0.42), r.u(0.05, 0.3), r.pick((MAIN, SECOND)))
        if r.coin(0.4):
            _armrests(a, r, -hx, hx, hy, h, SECOND)
    return a


def _sofa(r: Draw) -> Assembly:
    a = Assembly()
    hx, hy = r.u(0.27, 0.4), r.u(0.55, 0.8)
    leg = r.u(0.03, 0.1) if r.coin(0.5) else 0.0
    base_top, ct, bt = leg + r.u(0.12, 0.22), r.u(0.06, 0.12), r.u(0.1, 0.2)
    back_top = base_top + ct + r.u(0.22, 0.42)
    arm = r.pick(("none", "low", "high", "rolled"))
    aw, rad = (0.0 if arm == "none" else r.u(0.07, 0.18)), r.u(0.02, 0.05)
    a.box((0, 0, (leg + base_top) / 2), (hx, hy, (base_top - leg) / 2), MAIN, radius=rad)
    back_hz = (back_top - base_top) / 2
    a.box((bt / 2 - hx, 0, base_top + back_hz), (bt / 2, hy, back_hz), MAIN, radius=rad)
    n, inner = r.pick((1, 2, 3)), hy - aw
    cw, cushion = 2 * inner / n, r.pick((MAIN, SECOND))
    back_cushions = r.coin(0.5)
    for k in range(n):
        y = -inner + cw * (k + 0.5)
        a.box((bt / 2, y, base_top + ct / 2), (hx - bt / 2, cw / 2 - 0.004, ct / 2), cushion, radius=0.4 * ct)
        if back_cushions:
            hz = 0.4 * (back_top - base_top - ct)
            a.box(
                (bt - hx + 0.05, y, base_top + ct + hz + 0.02),
                (0.05, cw / 2 - 0.004, hz),
                cushion,
                rot_y(-0.15),
                radius=0.04,
            )
    if arm != "none":
        arm_top = base_top + ct + (r.u(0.06, 0.14) if arm == "low" else r.u(0.15, 0.3))
        for y in (aw / 2 - hy, hy - aw / 2):
            a.box((0, y, (leg + arm_top) / 2), (hx, aw / 2, (arm_top - leg) / 2), MAIN, radius=rad)
            if arm == "rolled":
                a.capsule((-hx + 0.05, y, arm_top), (hx, y, arm_top), 0.65 * aw, MAIN)
    if leg > 0:
        _legs(
            a,
            r,
            (0.05 - hx, hx - 0.05),
            np.linspace(0.05 - hy, hy - 0.05, r.pick((2, 3))),
            leg,
            SECOND,
            stretchers=False,
        )
    if r.coin(0.25):
        side, ext, wc = r.pick((-1, 1)), r.u(0.25, 0.45), r.u(0.25, 0.4)
        y = side * (hy - aw - wc / 2)
        base_hz = (base_top - leg) / 2
        a.box((hx + ext / 2, y, leg + base_hz), (ext / 2 + 0.02, wc / 2, base_hz), MAIN, radius=rad)
        a.box(
            (hx + ext / 2, y, base_top + ct / 2), (ext / 2, wc / 2 - 0.004, ct / 2), cushion, radius=0.4 * ct
        )
    return a


# ---------------------------------------------------------------------------------------------------------
# Tables and boxes: table, cabinet, speaker


def _table(r: Draw) -> Assembly:
    a = Assembly()
    h, tt = (r.u(0.35, 0.48) if r.coin(0.3) else r.u(0.62, 0.78)), r.u(0.025, 0.07)
    top, inset = h - tt, r.u(0.03, 0.12)
    round_top = r.coin(0.35)
    if round_top:
        radius = r.u(0.4, 0.6)
        hx = hy = 0.7 * radius
        a.cylinder((0, 0, h - tt / 2), radius, tt / 2, color=MAIN)
        support = r.pick(("legs", "legs", "pedestal"))
    else:
        hx, hy = r.u(0.45, 0.75), r.u(0.25, 0.45)
        a.box((0, 0, h - tt / 2), (hx, hy, tt / 2), MAIN, radius=r.u(0.0, 0.02))
        support = r.pick(("legs", "legs", "pedestal", "trestle", "panels"))
    lx, ly = hx - inset, hy - inset
    if support == "legs":
        _legs(a, r, (-lx, lx), (-ly, ly), top, SECOND)
        if round_top and r.coin(0.5):
            a.torus((0, 0, top - 0.03), np.hypot(lx, ly), 0.015, color=SECOND)
        elif r.coin(0.5):
            ah = r.u(0.03, 0.07)
            for s in (-1, 1):
                a.box((0, s * ly, top - ah), (lx, 0.012, ah), SECOND)
                a.box((s * lx, 0, top - ah), (0.012, ly, ah), SECOND)
        if r.coin(0.25):
            a.box((0, 0, r.u(0.1, 0.25)), (lx, ly, 0.012), MAIN)
        if not round_top and r.coin(0.25):
            dh = r.u(0.05, 0.1)
            a.box((lx / 2, 0, top - dh), (lx / 2, 0.9 * ly, dh), MAIN)
            handle_y = -0.9 * ly - 0.02
            a.capsule((lx / 2 - 0.06, handle_y, top - dh), (lx / 2 + 0.06, handle_y, top - dh), 0.008, ACCENT)
    elif support == "pedestal":
        for x in (0.0,) if round_top or hx < 0.55 else (-0.55 * hx, 0.55 * hx):
            _pedestal(a, r, top, SECOND, x)
    elif support == "trestle":
        for x in (-lx, lx):
            a.box((x, 0, top / 2), (0.025, 0.035, top / 2), SECOND)
            a.box((x, 0, 0.02), (0.03, 0.85 * hy, 0.02), SECOND, radius=0.01)
            a.box((x, 0, top - 0.02), (0.03, 0.85 * hy, 0.02), SECOND)
        a.beam((-lx, 0, 0.35 * top), (lx, 0, 0.35 * top), 0.02, SECOND)
    else:
        for x in (0.3 * inset - hx, hx - 0.3 * inset):
            a.box((x, 0, top / 2), (r.u(0.012, 0.03), 0.95 * hy, top / 2), SECOND)
        if r.coin(0.5):
            a.box((0, 0.8 * hy, 0.6 * top), (hx - inset, 0.01, 0.35 * top), SECOND)
    return a


def _shelves(a: Assembly, r: Draw, hx: float, hy: float, z0: float, z1: float) -> None:
    """Open bookcase carcass: sides, top, bottom, back and 1-4 shelves."""
    th, zc, hz = r.u(0.012, 0.025), (z0 + z1) / 2, (z1 - z0) / 2
    for y in (th - hy, hy - th):
        a.box((0, y, zc), (hx, th, hz), MAIN)
    a.box((th - hx, 0, zc), (th, hy, hz), SECOND)
    for z in np.linspace(z0 + th, z1 - th, r.i(1, 4) + 2):
        a.box((0, 0, z), (hx, hy, th), MAIN)


def _cabinet(r: Draw) -> Assembly:
    a = Assembly()
    hx, hy, height = r.u(0.15, 0.28), r.u(0.22, 0.55), r.u(0.45, 1.3)
    base = r.pick(("plinth", "legs", "none"))
    z0 = 0.0 if base == "none" else r.u(0.03, 0.12)
    z1 = z0 + height
    front = r.pick(("doors", "drawers", "mixed", "open"))
    if front == "open":
        _shelves(a, r, hx, hy, z0, z1)
    else:
        a.box((0, 0, (z0 + z1) / 2), (hx, hy, height / 2), MAIN, radius=0.004)
        cols = 1 if hy < 0.3 else r.i(2, 3 if hy > 0.45 else 2)
        split = z1 - (r.u(0.12, 0.2) * r.i(1, 2) if front == "mixed" else 0.0)
        if front == "drawers":
            _panel_grid(a, r, hx, (-hy, hy), (z0, z1), cols if r.coin(0.4) else 1, r.i(2, 6), True)
        else:
            _panel_grid(a, r, hx, (-hy, hy), (z0, split), cols, 1, False)
        if front == "mixed":
            _panel_grid(a, r, hx, (-hy, hy), (split, z1), cols, max(1, round((z1 - split) / 0.15)), True)
    if base == "plinth":
        a.box((0, 0, z0 / 2), (hx - 0.02, hy - 0.02, z0 / 2), SECOND)
    elif base == "legs":
        _legs(a, r, (0.03 - hx, hx - 0.03), (0.03 - hy, hy - 0.03), z0, SECOND, stretchers=False)
    if r.coin(0.35):
        a.box((0.01, 0, z1 + 0.015), (hx + 0.02, hy + 0.02, 0.015), MAIN, radius=0.005)
    return a


def _speaker(r: Draw) -> Assembly:
    a = Assembly()
    style = r.pick(("bookshelf", "bookshelf", "tower", "tower", "wide", "round"))
    hx, hy, height = {
        "bookshelf": (r.u(0.12, 0.2), r.u(0.12, 0.2), r.u(0.35, 0.6)),
        "tower": (r.u(0.14, 0.22), r.u(0.1, 0.17), r.u(0.85, 1.2)),
        "wide": (r.u(0.1, 0.16), r.u(0.35, 0.55), r.u(0.16, 0.3)),
        "round": (r.u(0.1, 0.16), 0.0, r.u(0.45, 0.9)),
    }[style]
    hy = hy or hx
    z0 = 0.0
    if style == "bookshelf" and r.coin(0.4):
        z0 = r.u(0.35, 0.6)
        _pedestal(a, r, z0, SECOND)
        a.box((0, 0, z0 - 0.01), (0.8 * hx, 0.8 * hy, 0.01), SECOND)
    elif style == "tower" and r.coin(0.6):
        z0 = 0.04
        for x in (0.02 - hx, hx - 0.02):
            for y in (0.02 - hy, hy - 0.02):
                a.cone((x, y, 0), (x, y, z0), 0.004, 0.015, SECOND)
    zc = z0 + height / 2
    if style == "round":
        a.cylinder((0, 0, zc), hx, height / 2, color=MAIN)
    else:
        a.box((0, 0, zc), (hx, hy, height / 2), MAIN, radius=r.u(0.003, 0.04))
    if style == "wide":
        n = r.i(2, 4)
        radius = min(0.35 * height, 0.8 * hy / n)
        for y in np.linspace(-hy, hy, n + 2)[1:-1]:
            _driver(a, hx, y, zc, radius)
        return a
    radius = r.u(0.55, 0.8) * hy * (0.7 if style == "round" else 1.0)
    n = max(1, min(r.i(1, 3), int((height - 0.1) / (2.3 * radius + 0.05))))
    tweeter = r.coin(0.7)
    slots = n + (1 if tweeter else 0)
    zs = z0 + height - (np.arange(slots) + 0.5) * (height / slots)
    if tweeter:
        _driver(a, hx, 0, zs[0], 0.3 * radius)
    for z in zs[slots - n :]:
        _driver(a, hx, 0, z, min(radius, 0.42 * height / slots))
    if r.coin(0.35):
        a.torus((hx, 0, z0 + 0.06), 0.025, 0.008, axis="x", color=SECOND)
    return a


# ---------------------------------------------------------------------------------------------------------
# Flat panels: display, phone


def _display(r: Draw) -> Assembly:
    a = Assembly()
    hy, hz, ht = r.u(0.38, 0.52), r.u(0.22, 0.32), r.u(0.01, 0.025)
    style = r.pick(("monitor", "monitor", "tv", "crt", "aio"))
    tilt = 0.0 if style in ("tv", "crt") else r.u(0.0, 0.2)
    rot = rot_y(-tilt)
    lift = {"monitor": r.u(0.09, 0.28), "tv": r.u(0.03, 0.12), "crt": 0.03, "aio": r.u(0.12, 0.2)}[style]
    c = np.array([0.0, 0.0, lift + hz])
    bezel, chin = r.u(0.01, 0.04), (r.u(0.04, 0.08) if style == "aio" else 0.0)
    a.box(c, (ht, hy, hz), MAIN, rot, radius=r.u(0.0, ht))
    a.box(c + rot @ [ht, 0, chin / 2], (0.003, hy - bezel, hz - bezel - chin / 2), ACCENT, rot)
    depth = r.u(0.2, 0.35) if style == "crt" else (r.u(0.03, 0.08) if r.coin(0.5) else 0.0)
    if depth:
        a.box(c + rot @ [-ht - depth / 2, 0, 0], (depth / 2, 0.6 * hy, 0.6 * hz), MAIN, rot, radius=0.02)
    back = c + rot @ [-ht - depth, 0, 0]
    if style == "monitor":
        foot = np.array([back[0] - 0.04, 0, 0.02])
        a.beam(back, foot, 0.02, SECOND)
        _flat_foot(a, r, foot, 0.6 * hz)
    elif style == "tv":
        for y in (-0.7 * hy, 0.7 * hy):
            a.beam((0, y, lift + 0.05), (0, y, 0.01), 0.012, SECOND)
            a.box((0, y, 0.01), (0.1, 0.02, 0.01), SECOND)
    elif style == "crt":
        a.box((back[0] / 2, 0, 0.015), (0.6 * abs(back[0]), 0.5 * hy, 0.015), SECOND)
    else:
        a.beam(back, (back[0] - 0.12, 0, 0.01), 0.03, SECOND)
        a.box((back[0] - 0.06, 0, 0.01), (0.1, 0.3 * hy, 0.01), SECOND)
    return a


def _flat_foot(a: Assembly, r: Draw, at: np.ndarray, reach: float) -> None:
    """Monitor foot at ``at``: disc, plate or two splayed bars."""
    style = r.pick(("disc", "plate", "vee"))
    if style == "disc":
        a.cylinder(at, reach, 0.012, color=SECOND)
    elif style == "plate":
        a.box(at, (0.6 * reach, reach, 0.012), SECOND, radius=0.01)
    else:
        for s in (-1, 1):
            a.beam(at, at + [0.6 * reach, s * reach, 0], 0.015, SECOND)


def _phone(r: Draw) -> Assembly:
    a = Assembly()
    hy, hz, ht = r.u(0.22, 0.28), r.u(0.42, 0.5), r.u(0.02, 0.045)
    style = r.pick(("smart", "smart", "keypad", "flip"))
    if style == "flip":
        hinge = np.array([0.0, 0.0, hz])
        low, up = rot_y(r.u(0.0, 0.15)), rot_y(-r.u(0.2, 0.6))
        _slab(a, hinge - low @ [0, 0, hz / 2], low, (ht, hy, hz / 2 - 0.01), ht, None)
        _keypad(a, hinge - low @ [0, 0, hz / 2], low, ht, hy, hz / 2)
        _slab(a, hinge + up @ [0, 0, hz / 2], up, (ht, hy, hz / 2 - 0.01), ht, 0.2 * hy)
        a.cylinder(hinge, 1.2 * ht, 0.8 * hy, axis="y", color=SECOND)
        return a
    rot = rot_y(-r.u(0.0, 0.25))
    c = np.array([0.0, 0.0, hz])
    if style == "smart":
        _slab(a, c, rot, (ht, hy, hz), r.u(0.3, 0.95) * ht, r.u(0.02, 0.05))
        cams, cy = r.i(1, 3), r.u(-0.5, 0.5) * hy
        for k in range(cams):
            a.cylinder(c + rot @ [-ht, cy, hz - 0.08 - 0.07 * k], 0.025, 0.006, axis=rot[:, 0], color=SECOND)
        if r.coin(0.5):
            a.box(c + rot @ [0, hy, 0.3 * hz], (0.5 * ht, 0.006, 0.06), SECOND, rot)
    else:
        _slab(a, c + rot @ [0, 0, 0.45 * hz], rot, (ht, hy, 0.55 * hz), 0.8 * ht, 0.15 * hy)
        _keypad(a, c + rot @ [0, 0, -0.5 * hz], rot, ht, hy, 0.5 * hz)
        a.box(c + rot @ [0, 0, -0.5 * hz], (ht, hy, 0.5 * hz), MAIN, rot, radius=0.8 * ht)
        if r.coin(0.4):
            a.capsule(c + rot @ [0, 0.6 * hy, hz], c + rot @ [0, 0.6 * hy, hz + 0.12], 0.015, SECOND)
    return a


def _slab(a: Assembly, c: np.ndarray, rot: np.ndarray, half: Vec, radius: float, bezel: float | None) -> None:
    """Flat rounded slab (phone body or half) with an optional screen inset by ``bezel`` on its +x face."""
    a.box(c, half, MAIN, rot, radius=radius)
    if bezel is not None:
        a.box(c + rot @ [half[0], 0, 0], (0.003, half[1] - bezel, half[2] - 1.5 * bezel), ACCENT, rot)


def _keypad(a: Assembly, c: np.ndarray, rot: np.ndarray, ht: float, hy: float, hz: float) -> None:
    """3 x 4 grid of keys on the +x face of a slab centred at ``c`` (half sizes ht, hy, hz)."""
    for i in range(3):
        for j in range(4):
            key = c + rot @ [ht, (i - 1) * 0.55 * hy, (0.6 - 0.4 * j) * hz]
            a.box(key, (0.006, 0.2 * hy, 0.12 * hz), SECOND, rot, radius=0.004)


# ---------------------------------------------------------------------------------------------------------
# Lamp


def _shade(a: Assembly, r: Draw, tip: np.ndarray, direction: np.ndarray, size: float) -> None:
    """Lamp shade hanging from ``tip`` and opening along ``direction``."""
    style, d = r.pick(("cone", "dome", "cylinder", "globe")), direction / np.linalg.norm(direction)
    length = size * r.u(0.7, 1.3)
    if style == "cone":
        a.cone(tip, tip + length * d, r.u(0.2, 0.6) * size, size, MAIN)
    elif style == "dome":
        centre = tip + length * d
        a.ellipsoid(centre, (size, size, length), MAIN, along(d), clips=[(d, centre)])
    elif style == "cylinder":
        a.rod(tip, tip + length * d, 0.8 * size, MAIN)
    else:
        a.sphere(tip + 0.7 * size * d, 0.7 * size, MAIN)


def _lamp(r: Draw) -> Assembly:
    a = Assembly()
    base, reach, bh = r.pick(("disc", "dome", "square", "tripod")), r.u(0.1, 0.2), r.u(0.02, 0.05)
    if base == "disc":
        a.cylinder((0, 0, bh / 2), reach, bh / 2, color=SECOND)
    elif base == "dome":
        bh *= 2.5
        a.ellipsoid((0, 0, 0), (reach, reach, bh), SECOND, clips=[((0, 0, -1), (0, 0, 0))])
    elif base == "square":
        a.box((0, 0, bh / 2), (0.8 * reach, 0.8 * reach, bh / 2), SECOND, radius=0.01)
    else:
        bh = r.u(0.2, 0.4)
        for k in range(3):
            ang = 2 * np.pi * k / 3
            a.capsule((0, 0, bh), (1.5 * reach * np.cos(ang), 1.5 * reach * np.sin(ang), 0.01), 0.01, SECOND)
    stem, thin, size = r.pick(("straight", "straight", "arm", "arc")), r.u(0.008, 0.02), r.u(0.1, 0.2)
    if stem == "straight":
        height = r.u(0.45, 1.0)
        a.rod((0, 0, bh), (0, 0, height), thin, SECOND)
        _shade(a, r, np.array([0, 0, height + 0.6 * size]), np.array([0.0, 0, -1]), size)
        return a
    if stem == "arm":
        a1, a2, b = r.u(0.1, 0.5), r.u(0.6, 1.6), r.u(0.0, 0.8)
        pts = [np.array([0.0, 0, bh])]
        pts.append(pts[0] + r.u(0.3, 0.5) * np.array([np.sin(a1), 0, np.cos(a1)]))
        pts.append(pts[1] + r.u(0.25, 0.45) * np.array([np.sin(a2), 0, np.cos(a2)]))
        direction = np.array([np.sin(b), 0, -np.cos(b)])
    else:
        height, radius = r.u(0.6, 0.9), r.u(0.3, 0.5)
        pts = [np.array([0.0, 0, bh])] + [
            np.array([radius + radius * np.cos(t), 0, height + radius * np.sin(t)])
            for t in np.linspace(np.pi, r.u(0.1, 0.5), 6)
        ]
        direction = np.array([0.0, 0, -1])
    for p, q in zip(pts, pts[1:], strict=False):
        a.capsule(p, q, thin, SECOND)
        a.sphere(q, 1.8 * thin, SECOND)
    _shade(a, r, pts[-1], direction, size)
    return a


# ---------------------------------------------------------------------------------------------------------
# Vehicles: airplane, car, watercraft; rifle


def _airplane(r: Draw) -> Assembly:
    a = Assembly()
    rf, nose, tail = r.u(0.035, 0.07), r.u(0.08, 0.2), r.u(0.15, 0.3)
    xn, xt, rise, wt = 0.5 - nose, tail - 0.5, rf * r.u(0.2, 0.8), r.u(0.008, 0.015)
    a.rod((xt, 0, 0), (xn, 0, 0), rf, MAIN)
    a.ellipsoid((xn, 0, 0), (nose, rf, rf), MAIN)
    a.cone((xt, 0, 0), (-0.5, 0, rise), rf, rf * r.u(0.15, 0.4), MAIN)
    delta = r.coin(0.15)
    if delta:
        sweep, cr, ct, span = r.u(0.9, 1.1), r.u(0.4, 0.55), r.u(0.02, 0.06), r.u(0.25, 0.4)
        xw = xt + cr + 0.05
    else:
        sweep, cr, span = r.u(0.0, 0.65), r.u(0.12, 0.26), r.u(0.35, 0.6)
        ct, xw = cr * r.u(0.25, 0.7), r.u(-0.02, 0.15) + cr / 2
    zw, dih = rf * r.pick((-0.6, 0.0, 0.6)), r.u(-0.05, 0.12)
    for side in (-1, 1):
        _planform(a, (xw, 0, zw), (0, side * np.cos(dih), np.sin(dih)), cr, ct, span, sweep, wt, SECOND)
    fin_h, fin_cr, fin_sweep = r.u(0.1, 0.22), r.u(0.1, 0.2), r.u(0.3, 0.9)
    fin_root = np.array([fin_cr - 0.5, 0, 0.5 * rise])
    _planform(a, fin_root, (0, 0, 1), fin_cr, fin_cr * r.u(0.3, 0.7), fin_h, fin_sweep, wt, SECOND)
    if not delta:
        hs_span, hs_cr = r.u(0.12, 0.22), r.u(0.07, 0.13)
        if r.coin(0.25):
            root = fin_root + [-fin_h * np.tan(fin_sweep), 0, fin_h]
        else:
            root = np.array([hs_cr * 1.1 - 0.5, 0, 0.7 * rise])
        for side in (-1, 1):
            _planform(a, root, (0, side, 0), hs_cr, 0.5 * hs_cr, hs_span, 0.8 * sweep + 0.1, 0.8 * wt, SECOND)
    engines = 0 if delta else r.pick((0, 2, 2, 4))
    er, el = r.u(0.025, 0.045), r.u(0.1, 0.18)
    for f in {0: (), 2: (0.35,), 4: (0.3, 0.62)}[engines]:
        b = f * span
        x = xw - b * np.tan(sweep)
        for side in (-1, 1):
            y, z = side * b * np.cos(dih), zw + b * np.sin(dih) - wt - 0.9 * er
            a.rod((x + 0.6 * el, y, z), (x - 0.4 * el, y, z), er, ACCENT)
    if engines == 0 and not delta and r.coin(0.6):
        blades, length = r.i(1, 2), r.u(0.08, 0.14)
        for k in range(blades):
            a.box((0.505, 0, 0), (0.005, 0.012, length), ACCENT, rot_x(np.pi * k / blades + 0.3))
    return a


def _car(r: Draw) -> Assembly:
    a = Assembly()
    hw, wr, ww = r.u(0.19, 0.25), r.u(0.075, 0.11), r.u(0.02, 0.035)
    style = r.pick(("sedan", "hatch", "suv", "pickup", "van", "sports"))
    hb = {"sports": (0.05, 0.07), "sedan": (0.06, 0.1), "hatch": (0.06, 0.1)}.get(style, (0.08, 0.12))
    hb = r.u(*hb)
    bottom = wr * r.u(0.3, 0.6)
    zt = bottom + 2 * hb
    a.box((0, 0, bottom + hb), (0.5, hw, hb), MAIN, radius=r.u(0.02, 0.05))
    cl, cx, ch, rake_f, rake_r = {
        "sedan": (r.u(0.4, 0.5), r.u(-0.08, 0.0), r.u(0.1, 0.14), r.u(0.6, 1.0), r.u(0.5, 0.9)),
        "hatch": (r.u(0.45, 0.55), None, r.u(0.11, 0.15), r.u(0.6, 0.9), r.u(0.1, 0.4)),
        "suv": (r.u(0.6, 0.7), None, r.u(0.14, 0.19), r.u(0.4, 0.7), r.u(0.05, 0.2)),
        "pickup": (r.u(0.25, 0.32), r.u(0.0, 0.1), r.u(0.13, 0.17), r.u(0.3, 0.6), r.u(0.0, 0.1)),
        "van": (r.u(0.8, 0.9), None, r.u(0.2, 0.28), r.u(0.5, 0.9), r.u(0.0, 0.1)),
        "sports": (r.u(0.35, 0.45), r.u(-0.1, 0.0), r.u(0.07, 0.1), r.u(1.0, 1.2), r.u(0.8, 1.1)),
    }[style]
    cx = cl / 2 - 0.47 if cx is None else cx
    scale = min(1.0, 0.8 * cl / (ch * (np.tan(rake_f) + np.tan(rake_r))))
    rakes = (np.arctan(scale * np.tan(rake_f)), np.arctan(scale * np.tan(rake_r)))
    span, cw = (cx - cl / 2, cx + cl / 2), hw * r.u(0.8, 0.92)
    _raked_box(a, span, cw, (zt - 0.02, zt + ch), rakes, MAIN, radius=r.u(0.01, 0.04))
    _raked_box(a, span, cw + 0.006, (zt + 0.3 * ch, zt + 0.8 * ch), rakes, ACCENT, inset=0.02)
    xa = 0.5 - r.u(0.15, 0.22)
    for x in (-xa, xa):
        for y in (ww / 2 - hw, hw - ww / 2):
            a.cylinder((x, y, wr), wr, ww, axis="y", color=SECOND)
            a.cylinder((x, y + np.sign(y) * ww, wr), 0.5 * wr, 0.006, axis="y", color=ACCENT)
    if style == "pickup":
        bed = (span[0] + 0.5) / 2
        for y in (0.012 - hw, hw - 0.012):
            a.box((span[0] - bed, y, zt + 0.03), (bed, 0.012, 0.03), MAIN)
        a.box((0.012 - 0.5, 0, zt + 0.03), (0.012, hw, 0.03), MAIN)
    elif style == "sports" and r.coin(0.6):
        for y in (-0.5 * hw, 0.5 * hw):
            a.beam((0.03 - 0.5, y, zt), (0.03 - 0.5, y, zt + 0.05), 0.006, SECOND)
        a.box((0.03 - 0.5, 0, zt + 0.05), (0.035, hw, 0.006), SECOND)
    elif style in ("suv", "van") and r.coin(0.4):
        for y in (-0.7 * cw, 0.7 * cw):
            a.rod((span[0] + 0.05, y, zt + ch + 0.015), (span[1] - 0.1, y, zt + ch + 0.015), 0.008, SECOND)
    return a


def _watercraft(r: Draw) -> Assembly:
    a = Assembly()
    style = r.pick(("sail", "motor", "ship", "canoe"))
    hb = {"sail": (0.1, 0.16), "motor": (0.11, 0.17), "ship": (0.07, 0.11), "canoe": (0.05, 0.08)}[style]
    hb, deck = r.u(*hb), r.u(0.06, 0.14) if style != "canoe" else r.u(0.04, 0.07)
    clips: list[Clip] = [((0, 0, 1), (0, 0, deck))]
    if style != "canoe":
        clips.append(((-1, 0, 0), (-0.5 * r.u(0.7, 0.95), 0, 0)))
    a.ellipsoid((0, 0, deck), (0.5, hb, deck), MAIN, clips=clips)
    if r.coin(0.5):
        a.ellipsoid(
            (0, 0, deck),
            (0.504, hb + 0.004, deck + 0.004),
            SECOND,
            clips=[((0, 0, 1), (0, 0, 0.45 * deck)), *clips[1:]],
        )
    BOATS[style](a, r, hb, deck)
    return a


def _sailboat(a: Assembly, r: Draw, hb: float, deck: float) -> None:
    xm, mast = r.u(-0.05, 0.15), r.u(0.5, 0.85)
    top, boom = np.array([xm, 0, deck + mast]), deck + 0.06
    a.rod((xm, 0, deck), top, 0.008, SECOND)
    bl = r.u(0.3, 0.5)
    a.rod((xm, 0, boom), (xm - bl, 0, boom), 0.006, SECOND)
    a.box(
        (xm - bl / 2, 0, (boom + top[2]) / 2),
        (bl / 2, 0.004, (top[2] - boom) / 2),
        ACCENT,
        clips=[_keep_side(top, (xm - bl, 0, boom), (xm - 0.01, 0, boom + 0.01))],
    )
    if r.coin(0.6):
        head, bow = top - [0, 0, 0.15 * mast], np.array([0.45, 0, deck])
        a.box(
            ((xm + 0.45) / 2, 0, (deck + head[2]) / 2),
            ((0.45 - xm) / 2, 0.004, (head[2] - deck) / 2),
            ACCENT,
            clips=[_keep_side(head, bow, (xm + 0.01, 0, deck + 0.01))],
        )
    if r.coin(0.5):
        a.box((xm - 0.15, 0, deck + 0.03), (0.12, 0.6 * hb, 0.05), SECOND, radius=0.02)


def _motorboat(a: Assembly, r: Draw, hb: float, deck: float) -> None:
    cl, cx, ch, cw = r.u(0.25, 0.45), r.u(-0.15, 0.05), r.u(0.08, 0.15), hb * r.u(0.6, 0.85)
    span, rakes = (cx - cl / 2, cx + cl / 2), (r.u(0.5, 1.0), r.u(0.0, 0.3))
    _raked_box(a, span, cw, (deck - 0.01, deck + ch), rakes, SECOND, radius=0.015)
    _raked_box(a, span, cw + 0.005, (deck + 0.4 * ch, deck + 0.85 * ch), rakes, ACCENT, inset=0.02)
    if r.coin(0.4):
        a.box((span[0] + 0.1, 0, deck + ch + 0.04), (0.08, 0.8 * cw, 0.04), SECOND, radius=0.01)
    if r.coin(0.5):
        a.rod((cx, 0, deck + ch), (cx, 0, deck + ch + r.u(0.1, 0.2)), 0.006, SECOND)


def _ship(a: Assembly, r: Draw, hb: float, deck: float) -> None:
    x, z, length = r.u(-0.3, -0.05), deck, r.u(0.2, 0.35)
    for _ in range(r.i(1, 3)):
        h = r.u(0.04, 0.08)
        a.box((x, 0, z + h / 2), (length / 2, 0.8 * hb, h / 2), SECOND)
        z, length = z + h, length * r.u(0.5, 0.8)
    for k in range(r.i(0, 2)):
        fx = x - 0.05 - 0.08 * k
        a.cone((fx, 0, deck), (fx, 0, z + r.u(0.06, 0.12)), 0.04, 0.03, ACCENT)
    if r.coin(0.5):
        a.rod((x + 0.05, 0, z), (x + 0.05, 0, z + r.u(0.1, 0.25)), 0.006, SECOND)
    if r.coin(0.4):
        for cx in np.arange(x + length + 0.1, 0.3, 0.1):
            a.box((cx, 0, deck + 0.03), (0.045, 0.7 * hb, 0.03), r.pick((SECOND, ACCENT)))


def _canoe(a: Assembly, r: Draw, hb: float, deck: float) -> None:
    """Kayak (cockpit ring, maybe a paddle) or open canoe (gunwale rim along the deck edge, thwarts)."""
    if r.coin(0.5):
        a.torus((0, 0, deck + 0.01), 0.7 * hb, 0.012, color=SECOND)
        if r.coin(0.6):
            a.capsule((0.05, -0.25, deck + 0.05), (0.05, 0.25, deck + 0.05), 0.008, ACCENT)
            for y in (-0.25, 0.25):
                a.box((0.05, y, deck + 0.05), (0.003, 0.06, 0.025), ACCENT)
    else:
        angles = np.linspace(0, 2 * np.pi, 17)
        rim = [np.array([0.48 * np.cos(t), 0.95 * hb * np.sin(t), deck + 0.012]) for t in angles]
        for p, q in zip(rim, rim[1:], strict=False):
            a.capsule(p, q, 0.012, SECOND)
        for x in np.linspace(-0.2, 0.2, r.i(1, 3)):
            a.box((x, 0, deck + 0.015), (0.025, 0.9 * hb, 0.008), SECOND)


def _rifle(r: Draw) -> Assembly:
    a = Assembly()
    lr, hr, wr = r.u(0.2, 0.32), r.u(0.03, 0.05), r.u(0.015, 0.025)
    a.box((lr / 2, 0, 0), (lr / 2, wr, hr), MAIN, radius=r.u(0.0, 0.01))
    lb, rb, bz = r.u(0.3, 0.55), r.u(0.007, 0.014), hr * r.u(0.2, 0.5)
    a.rod((lr, 0, bz), (lr + lb, 0, bz), rb, SECOND)
    hl = lb * r.u(0.35, 0.7)
    if r.coin(0.4):
        a.box((lr + hl / 2, 0, bz - 0.2 * hr), (hl / 2, 0.9 * wr, 0.7 * hr), MAIN, radius=0.008)
    elif r.coin(0.6):
        a.rod((lr, 0, bz), (lr + hl, 0, bz), 0.7 * hr, MAIN)
    if r.coin(0.5):
        a.rod((lr + lb - 0.04, 0, bz), (lr + lb + 0.01, 0, bz), 1.8 * rb, SECOND)
    _stock(a, r, hr, wr)
    if r.coin(0.8):
        ang, start = r.u(0.2, 0.45), np.array([0.2 * lr, 0, -hr])
        a.beam(start, start + r.u(0.08, 0.12) * np.array([-np.sin(ang), 0, -np.cos(ang)]), 0.015, MAIN)
    a.torus((0.38 * lr, 0, -hr), 0.03, 0.005, axis="y", color=SECOND, clips=[((0, 0, 1), (0, 0, -hr))])
    if r.coin(0.7):
        start, curve, depth = np.array([0.6 * lr, 0, -hr]), r.u(0.0, 0.5), r.u(0.025, 0.04)
        for ang, seg in ((0.1, r.u(0.04, 0.09)), (0.1 + curve, r.u(0.03, 0.09))):
            end = start + seg * np.array([np.sin(ang), 0, -np.cos(ang)])
            a.add("box", (0.8 * wr, depth, seg / 2 + 0.005), (start + end) / 2, along(end - start), SECOND)
            start = end
    elif r.coin(0.5):
        a.rod((lr, 0, bz - 2.5 * rb), (lr + 0.8 * lb, 0, bz - 2.5 * rb), rb, SECOND)
    if r.coin(0.5):
        _scope(a, r, lr, hr)
    if r.coin(0.2):
        front = np.array([lr + 0.8 * hl, 0, bz - rb])
        for y in (-0.06, 0.06):
            a.capsule(front, front + [0.05, y, -0.2], 0.006, SECOND)
    return a


def _stock(a: Assembly, r: Draw, hr: float, wr: float) -> None:
    """Rifle stock behind the receiver (x < 0): a tapered solid block or a tubular skeleton."""
    length, drop, butt = r.u(0.22, 0.34), r.u(0.0, 0.2), r.u(0.05, 0.08)
    p0 = np.array([0.0, 0, 0.3 * hr])
    p1 = p0 - length * np.array([np.cos(drop), 0, np.sin(drop)])
    if r.coin(0.7):
        clip = _keep_side((0, 0, -0.8 * hr), p1 - [0, 0, butt], p0)
        a.box(
            (p0 + p1) / 2 - [0, 0, butt - 0.7 * hr],
            (length / 2, 0.9 * wr, butt),
            MAIN,
            rot_y(-drop),
            clips=[clip],
        )
        return
    low = np.array([0.0, 0, -hr])
    for p, q in ((p0, p1), (low, p1 - [0, 0, 2 * butt]), (p1, p1 - [0, 0, 2 * butt])):
        a.capsule(p, q, 0.01, MAIN)


def _scope(a: Assembly, r: Draw, lr: float, hr: float) -> None:
    """Telescopic sight above the receiver: tube, two bells and two mounts."""
    z, length, radius = hr + r.u(0.03, 0.05), r.u(0.15, 0.3), r.u(0.012, 0.02)
    x0, x1 = lr / 2 - length / 2, lr / 2 + length / 2
    a.rod((x0, 0, z), (x1, 0, z), radius, ACCENT)
    a.cone((x1, 0, z), (x1 + 0.05, 0, z), radius, 1.6 * radius, ACCENT)
    a.cone((x0, 0, z), (x0 - 0.04, 0, z), radius, 1.3 * radius, ACCENT)
    for x in (x0 + 0.25 * length, x1 - 0.25 * length):
        a.beam((x, 0, hr), (x, 0, z), 0.008, SECOND)


BOATS: dict[str, Callable[[Assembly, Draw, float, float], None]] = {
    "sail": _sailboat,
    "motor": _motorboat,
    "ship": _ship,
    "canoe": _canoe,
}
BUILDERS: dict[str, Callable[[Draw], Assembly]] = {
    "airplane": _airplane,
    "bench": _bench,
    "cabinet": _cabinet,
    "car": _car,
    "chair": _chair,
    "display": _display,
    "lamp": _lamp,
    "speaker": _speaker,
    "rifle": _rifle,
    "sofa": _sofa,
    "table": _table,
    "phone": _phone,
    "watercraft": _watercraft,
}
