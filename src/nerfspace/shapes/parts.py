"""Machine parts with known defects, for inspection: 5 part types, 5 defect types with a severity knob.

`make_part(part, seed, defect, severity)` is a pure function of its arguments. Normal instances of a part
vary within tolerances (every dimension by up to ``TOLERANCE``, the colour mildly); a defect changes the
normal instance of the same seed in one place only, and `Region` bounds where (a sphere in the placed
frame, the frame of the returned object before any capture pose). Builders work like the categories'
(canonical frame, +z up, `Assembly` with cuts for holes) and declare their defect sites: the holes a
defect can leave undrilled, flat faces where one can be drilled or dented, edges where a notch or a burr
can sit. The part is placed from its normal assembly, so a defect never moves the rest of the part.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nerfspace.errors import InputError
from nerfspace.shapes.categories import Draw
from nerfspace.shapes.sdf import Assembly, Part, SDFObject, Vec, along, rot_z

PARTS: tuple[str, ...] = ("flange", "bracket", "gear", "elbow", "bolt")
DEFECTS: tuple[str, ...] = ("missing_hole", "extra_hole", "notch", "dent", "burr")
SEVERITIES: dict[str, float] = {"low": 0.35, "medium": 0.65, "high": 1.0}  # named levels of the knob
MAX_SEVERITY = 3.0  # beyond high, a defect grows past its high size (a missing hole is gone from 1 on)
TOLERANCE = 0.03  # relative variation of every dimension of a normal part
BLEND = 0.004  # smooth-union width (scene units)
# defect sizes at severity 1 (units of the part before placement, whose longest side is about 1)
EXTRA_HOLE_RADIUS = 0.05
NOTCH_HALF = 0.05
DENT_DEPTH = 0.04
DENT_RADIUS = 0.12
BURR_RADIUS = 0.04


@dataclass(frozen=True)
class Site:
    """A place a defect can go: a point on the surface, its outward normal, the material depth below it."""

    point: np.ndarray
    normal: np.ndarray
    depth: float = 0.0


@dataclass(frozen=True)
class Region:
    """Where a defect changed the part: a ball (centre [3], radius) in the placed frame."""

    centre: np.ndarray
    radius: float

    def to_dict(self) -> dict:
        return {"centre": [round(float(v), 6) for v in self.centre], "radius": round(float(self.radius), 6)}


@dataclass
class Design:
    """A normal part: its assembly and its defect sites (``holes`` index ``assembly.cuts.parts``)."""

    assembly: Assembly
    holes: list[int] = field(default_factory=list)
    faces: list[Site] = field(default_factory=list)
    edges: list[Site] = field(default_factory=list)


def _site(point: Vec, normal: Vec, depth: float = 0.0) -> Site:
    n = np.asarray(normal, dtype=float)
    return Site(np.asarray(point, dtype=float), n / np.linalg.norm(n), depth)


def _ring(radius: float, count: int, z: float, phase: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` points on a circle about z (and their outward unit directions)."""
    out = []
    for k in range(count):
        a = phase + 2 * np.pi * k / count
        d = np.array([np.cos(a), np.sin(a), 0.0])
        out.append((radius * d + [0, 0, z], d))
    return out


def _hole(design: Design, center: Vec, radius: float, half: float, axis: str | Vec = "z") -> None:
    """A hole through material ``half`` thick (the cut reaches half that again beyond either side)."""
    design.holes.append(len(design.assembly.cuts.parts))
    design.assembly.cuts.cylinder(center, radius, half, axis)


# ---------------------------------------------------------------------------------------------------------
# Part builders: ``t(x)`` is dimension x within tolerance


def _flange(t: Callable[[float], float]) -> Design:
    """A disc with a raised hub, a bore and six bolt holes."""
    radius, thick, hub, hub_h, pitch = t(0.5), t(0.08), t(0.2), t(0.22), t(0.36)
    d = Design(Assembly())
    d.assembly.cylinder((0, 0, thick / 2), radius, thick / 2)
    d.assembly.cylinder((0, 0, hub_h / 2), hub, hub_h / 2)
    d.assembly.cuts.cylinder((0, 0, hub_h / 2), t(0.1), hub_h)
    for p, _ in _ring(pitch, 6, thick / 2):
        _hole(d, p, t(0.04), thick)
    d.faces = [
        _site(p + [0, 0, thick / 2], (0, 0, 1), thick) for p, _ in _ring(pitch, 6, thick / 2, np.pi / 6)
    ]
    d.edges = [_site(p, n) for p, n in _ring(radius, 12, thick / 2, np.pi / 12)]
    return d


def _bracket(t: Callable[[float], float]) -> Design:
    """An L-bracket: a base plate and an upright plate, two holes in each."""
    length, width, thick, height = t(0.7), t(0.4), t(0.06), t(0.6)
    x0 = -length / 2 + thick / 2  # the upright's mid-plane
    d = Design(Assembly())
    d.assembly.box((0, 0, thick / 2), (length / 2, width / 2, thick / 2))
    d.assembly.box((x0, 0, height / 2), (thick / 2, width / 2, height / 2))
    for y in (-t(0.1), t(0.1)):
        _hole(d, (t(0.15), y, thick / 2), t(0.035), thick)
        _hole(d, (x0, y, t(0.38)), t(0.035), thick, "x")
    d.faces = [
        _site((t(0.27), 0, thick), (0, 0, 1), thick),
        _site((-t(0.08), t(0.11), thick), (0, 0, 1), thick),
        _site((-t(0.08), -t(0.11), thick), (0, 0, 1), thick),
        _site((x0 + thick / 2, 0, t(0.2)), (1, 0, 0), thick),
        _site((x0 + thick / 2, 0, t(0.5)), (1, 0, 0), thick),
    ]
    d.edges = [_site((length / 2, y, thick / 2), (1, 0, 0)) for y in (-t(0.12), 0.0, t(0.12))]
    d.edges += [_site((x, s * width / 2, thick / 2), (0, s, 0)) for x in (-t(0.05), t(0.2)) for s in (-1, 1)]
    d.edges += [_site((x0, y, height), (0, 0, 1)) for y in (-t(0.12), 0.0, t(0.12))]
    d.edges += [_site((x0, s * width / 2, t(0.45)), (0, s, 0)) for s in (-1, 1)]
    return d


def _gear(t: Callable[[float], float]) -> Design:
    """A spur gear: 16 teeth on a disc, a bore and four lightening holes."""
    root, thick, tooth = t(0.4), t(0.12), t(0.045)
    d = Design(Assembly())
    d.assembly.cylinder((0, 0, thick / 2), root, thick / 2)
    for p, n in _ring(root + tooth * 0.8, 16, thick / 2):
        d.assembly.box(p, (tooth, t(0.035), thick / 2), rot=rot_z(float(np.arctan2(n[1], n[0]))))
        d.edges.append(_site(p + n * tooth, n))
    d.assembly.cuts.cylinder((0, 0, thick / 2), t(0.08), thick)
    for p, _ in _ring(t(0.22), 4, thick / 2, np.pi / 4):
        _hole(d, p, t(0.07), thick)
    d.faces = [_site(p + [0, 0, thick / 2], (0, 0, 1), thick) for p, _ in _ring(t(0.25), 4, thick / 2)]
    return d


def _elbow(t: Callable[[float], float]) -> Design:
    """A 90-degree pipe elbow (a quarter torus in the xz plane) with a bolted flange at each end."""
    bend, outer, bore, flange = t(0.3), t(0.1), t(0.07), t(0.17)
    stub, plate = t(0.12), t(0.04)
    keep = [((-1, 0, 0), (0, 0, 0)), ((0, 0, -1), (0, 0, 0))]  # x >= 0 and z >= 0
    d = Design(Assembly())
    d.assembly.torus((0, 0, 0), bend, outer, axis="y", clips=keep)
    d.assembly.cuts.torus((0, 0, 0), bend, bore, axis="y", clips=keep)
    ends = (np.array([bend, 0, 0]), np.array([0, 0, -1.0])), (np.array([0, 0, bend]), np.array([-1.0, 0, 0]))
    for base, out in ends:
        d.assembly.rod(base, base + stub * out, outer)
        d.assembly.cylinder(base + (stub - plate / 2) * out, flange, plate / 2, axis=out)
        d.assembly.cuts.rod(base - 0.05 * out, base + (stub + 0.05) * out, bore)
        frame = along(out)
        for k in range(4):
            a = np.pi / 4 + k * np.pi / 2
            p = base + (stub - plate / 2) * out + frame @ (t(0.135) * np.array([np.cos(a), np.sin(a), 0]))
            _hole(d, p, t(0.022), plate, out)
        for k in range(6):
            a = k * np.pi / 3
            radial = frame @ np.array([np.cos(a), np.sin(a), 0])
            d.edges.append(_site(base + (stub - plate / 2) * out + flange * radial, radial))
    wall = outer - bore
    for a in (np.pi / 4, np.pi / 8, 3 * np.pi / 8):
        n = np.array([np.cos(a), 0, np.sin(a)])
        d.faces.append(_site((bend + outer) * n, n, wall))
        d.faces += [_site(bend * n + [0, s * outer, 0], (0, s, 0), wall) for s in (-1, 1)]
    return d


def _bolt(t: Callable[[float], float]) -> Design:
    """A hex bolt standing on its tip: threaded shank, hex head, a cross hole for a split pin."""
    shank, length, flats, head = t(0.08), t(0.7), t(0.13), t(0.12)
    hexagon = [
        ((np.cos(a), np.sin(a), 0), (flats * np.cos(a), flats * np.sin(a), 0))
        for a in np.arange(6) * np.pi / 3
    ]
    corner = flats / np.cos(np.pi / 6)
    d = Design(Assembly())
    d.assembly.rod((0, 0, 0), (0, 0, length), shank)
    d.assembly.box((0, 0, length + head / 2), (corner, corner, head / 2), clips=hexagon)
    pitch = t(0.04)
    for k in range(9):
        d.assembly.torus((0, 0, 0.05 + k * pitch), shank, t(0.012))
    _hole(d, (0, 0, t(0.5)), t(0.03), 2 * shank, "y")
    top = length + head
    d.faces = [_site((0, 0, top), (0, 0, 1), head)]
    d.faces += [_site(p, n, head) for p, n in _ring(flats, 6, length + head / 2)]
    d.faces += [_site(p, n, shank) for p, n in _ring(shank, 2, t(0.6), np.pi / 2)]
    d.edges = [_site(p, n + [0, 0, 1]) for p, n in _ring(corner, 6, top, np.pi / 6)]
    d.edges += [_site(p, n + [0, 0, -1]) for p, n in _ring(shank, 4, 0.0)]
    return d


BUILDERS: dict[str, Callable[[Callable[[float], float]], Design]] = {
    "flange": _flange,
    "bracket": _bracket,
    "gear": _gear,
    "elbow": _elbow,
    "bolt": _bolt,
}


# ---------------------------------------------------------------------------------------------------------
# Defects: each changes one site of a normal design and returns the ball that holds the change


def _missing_hole(d: Design, r: Draw, severity: float) -> tuple[np.ndarray, float]:
    """A hole drilled too small: its radius shrinks by ``severity`` (gone from 1 on)."""
    cuts = d.assembly.cuts.parts
    i = r.pick(d.holes)
    hole = cuts[i]
    radius, half = float(hole.sizes[0]), float(hole.sizes[1])
    if severity >= 1.0:
        del cuts[i]
    else:
        cuts[i] = Part(
            hole.kind, np.array([radius * (1 - severity), half]), hole.rot, hole.center, hole.color
        )
    return hole.center, float(np.hypot(radius, half / 2))


def _extra_hole(d: Design, r: Draw, severity: float) -> tuple[np.ndarray, float]:
    """A hole drilled where none belongs, through the material under a face site."""
    s = r.pick(d.faces)
    radius, centre = EXTRA_HOLE_RADIUS * severity, s.point - s.normal * s.depth / 2
    d.assembly.cuts.cylinder(centre, radius, s.depth / 2 + 0.01, s.normal)
    return centre, float(np.hypot(radius, s.depth / 2 + 0.01))


def _notch(d: Design, r: Draw, severity: float) -> tuple[np.ndarray, float]:
    """A cube-shaped bite out of an edge."""
    s = r.pick(d.edges)
    half = NOTCH_HALF * severity
    d.assembly.cuts.box(s.point, (half, half, half), rot=along(s.normal) @ rot_z(r.u(0, np.pi / 2)))
    return s.point, float(np.sqrt(3) * half)


def _dent(d: Design, r: Draw, severity: float) -> tuple[np.ndarray, float]:
    """A shallow spherical dent into a face."""
    s = r.pick(d.faces)
    depth = DENT_DEPTH * severity
    d.assembly.cuts.sphere(s.point + s.normal * (DENT_RADIUS - depth), DENT_RADIUS)
    return s.point, float(np.sqrt(DENT_RADIUS**2 - (DENT_RADIUS - depth) ** 2))


def _burr(d: Design, r: Draw, severity: float) -> tuple[np.ndarray, float]:
    """A blob of extra material stuck on an edge."""
    s = r.pick(d.edges)
    radius = BURR_RADIUS * severity
    centre = s.point + s.normal * 0.5 * radius
    d.assembly.sphere(centre, radius)
    return centre, radius


APPLY: dict[str, Callable[[Design, Draw, float], tuple[np.ndarray, float]]] = {
    "missing_hole": _missing_hole,
    "extra_hole": _extra_hole,
    "notch": _notch,
    "dent": _dent,
    "burr": _burr,
}


def severity_value(severity: float | str) -> float:
    """A severity as a number in (0, `MAX_SEVERITY`]: a named level of `SEVERITIES` or a number."""
    if isinstance(severity, str):
        if severity in SEVERITIES:
            return SEVERITIES[severity]
        try:
            severity = float(severity)
        except ValueError:
            raise InputError(
                f"unknown severity {severity!r}; give a number in (0, {MAX_SEVERITY:g}] or one of "
                f"{', '.join(SEVERITIES)}"
            ) from None
    if not 0.0 < severity <= MAX_SEVERITY:  # also refuses NaN
        raise InputError(f"severity must be in (0, {MAX_SEVERITY:g}], got {severity}")
    return float(severity)


def _palette(index: int, rng: np.random.Generator) -> np.ndarray:
    """One metal-like colour, the part's own hue within a small tolerance: low saturation, mid value."""
    hue = (index / len(PARTS) + rng.uniform(-0.02, 0.02)) % 1.0
    return np.array([colorsys.hsv_to_rgb(hue, rng.uniform(0.15, 0.25), rng.uniform(0.55, 0.7))])


def make_part(
    part: str, seed: int, defect: str | None = None, severity: float | str = 0.0
) -> tuple[SDFObject, Region | None]:
    """Instance ``seed`` of ``part``, normal (``defect`` None) or with ``defect`` at ``severity`` in
    (0, `MAX_SEVERITY`];
    the object's ``category`` is the part's name. Returns the object and the defect's region (None when
    normal)."""
    if part not in PARTS:
        raise InputError(f"unknown part {part!r}; parts are {', '.join(PARTS)}")
    if int(seed) != seed or seed < 0:
        raise InputError(f"part seed must be an integer >= 0, got {seed!r}")
    if defect is not None and defect not in DEFECTS:
        raise InputError(f"unknown defect {defect!r}; defects are {', '.join(DEFECTS)}")
    index, seed = PARTS.index(part), int(seed)
    draw = Draw(np.random.default_rng([100 + index, seed]))
    factors = iter(draw.rng.uniform(1 - TOLERANCE, 1 + TOLERANCE, 256))

    def within(x: float) -> float:
        return x * float(next(factors))

    design = BUILDERS[part](within)
    placement = design.assembly.placement(1.0, 0.0, max_half=0.58 - 2 * BLEND)
    region = None
    if defect is not None:
        level = severity_value(severity)
        rng = np.random.default_rng([100 + index, seed, 2, DEFECTS.index(defect)])
        centre, radius = APPLY[defect](design, Draw(rng), level)
        region = Region(placement.apply(centre), radius * placement.scale)
    elif severity:
        raise InputError("a severity needs a defect")
    palette = _palette(index, np.random.default_rng([100 + index, seed, 1]))
    return design.assembly.moved(placement).to_object(part, seed, palette, BLEND), region
