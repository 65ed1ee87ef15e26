"""NeRF architecture specs (`ArchSpec`) and the registry of the 13 presets at two scales.

An `ArchSpec` fully describes how a NeRF computes; it serialises to JSON and every stored NeRF carries
its spec, so a file is self-describing. Presets are names for specific specs; users may declare any
spec within the three families.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from nerfspace.errors import SpecError

FAMILIES = ("mlp", "triplane", "hash")
ACTIVATIONS = ("relu", "sine")
SCALES = ("small", "paper")
SEEN = ("mlp", "triplane", "hash")
UNSEEN = (
    "mlp_2l",
    "mlp_4l",
    "mlp_w32",
    "mlp_w128",
    "triplane_r16",
    "triplane_f8",
    "triplane_relu",
    "hash_t11",
    "hash_t13",
    "hash_l8",
)
PRESETS = SEEN + UNSEEN
SCENE_BOX = 0.7  # every NeRF lives in [-0.7, 0.7]^3
# Caps on declared sizes, checked before anything is allocated (a typo must not exhaust the machine).
# The paper's presets sit far below every one of them.
LIMITS = {
    "n_freqs": 64,
    "plane_res": 1024,
    "plane_features": 256,
    "hash_levels": 32,
    "hash_log2_size": 24,
    "hash_features": 16,
    "hash_base_res": 8192,
    "hash_max_res": 8192,
    "hidden_layers": 64,
    "width": 4096,
    "in_multiple": 64,
    "out_dim": 4,
    "out_pad": 64,
}
MAX_PARAMS = 64 * 2**20  # stored scalars of one NeRF (256 MB as float32)
MAX_SPEC_BYTES = 64 * 1024  # an ArchSpec JSON file


@dataclass(frozen=True)
class ArchSpec:
    """Everything that fixes how a NeRF of one architecture computes.

    Inputs are normalised from the scene box to [0, 1]^3 before encoding. The MLP input is the
    frequency encoding (``n_freqs`` per axis, sin/cos, no identity) concatenated after the spatial
    features (tri-plane or hash grid), zero-padded to a multiple of ``in_multiple``.
    Outputs: 4 (RGB logits, density) zero-padded to ``out_pad`` rows (tiny-cuda-nn compatibility).
    """

    family: str
    n_freqs: int = 0
    plane_res: int = 0
    plane_features: int = 0
    hash_levels: int = 0
    hash_log2_size: int = 0
    hash_features: int = 0
    hash_base_res: int = 0
    hash_max_res: int = 0
    hidden_layers: int = 3
    width: int = 64
    activation: str = "relu"
    bias: bool = False
    in_multiple: int = 1
    out_dim: int = 4
    out_pad: int = 16

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in LIMITS:  # bool is an int in Python: refuse it explicitly
                if not isinstance(value, int) or isinstance(value, bool):
                    raise SpecError(f"ArchSpec {f.name} must be an integer, got {_short(value)}")
                if not 0 <= value <= LIMITS[f.name]:
                    raise SpecError(f"ArchSpec {f.name} must be in [0, {LIMITS[f.name]}], got {value}")
            elif f.name == "bias" and not isinstance(value, bool):
                raise SpecError(f"ArchSpec bias must be true or false, got {_short(value)}")
            elif f.name in ("family", "activation") and not isinstance(value, str):
                raise SpecError(f"ArchSpec {f.name} must be a string, got {_short(value)}")
        if self.family not in FAMILIES:
            raise SpecError(f"unknown family {self.family!r}; expected one of {', '.join(FAMILIES)}")
        if self.activation not in ACTIVATIONS:
            raise SpecError(
                f"unknown activation {self.activation!r}; expected one of {', '.join(ACTIVATIONS)}"
            )
        if self.hidden_layers < 1 or self.width < 1 or self.n_freqs < 0:
            raise SpecError("hidden_layers and width must be >= 1 and n_freqs >= 0")
        if self.out_dim != 4 or self.out_pad < self.out_dim or self.in_multiple < 1:
            raise SpecError("out_dim must be 4, out_pad >= 4 and in_multiple >= 1")
        if self.family == "mlp" and self.n_freqs < 1:
            raise SpecError("an mlp NeRF needs n_freqs >= 1")
        if self.family == "triplane" and (self.plane_res < 2 or self.plane_features < 1):
            raise SpecError("a triplane NeRF needs plane_res >= 2 and plane_features >= 1")
        if self.family == "hash":
            if self.hash_levels < 1 or self.hash_features < 1 or not 1 <= self.hash_log2_size <= 24:
                raise SpecError(
                    "a hash NeRF needs hash_levels >= 1, hash_features >= 1, 1 <= hash_log2_size <= 24"
                )
            if not 2 <= self.hash_base_res <= self.hash_max_res:
                raise SpecError("a hash NeRF needs 2 <= hash_base_res <= hash_max_res")
        if self.n_params > MAX_PARAMS:
            raise SpecError(f"ArchSpec declares {self.n_params:,} parameters; the limit is {MAX_PARAMS:,}")

    # ---- derived sizes -------------------------------------------------------------------------
    @property
    def spatial_dim(self) -> int:
        """Features produced by the spatial structure (tri-plane or hash grid) per point."""
        if self.family == "triplane":
            return self.plane_features
        if self.family == "hash":
            return self.hash_levels * self.hash_features
        return 0

    @property
    def encoding_dim(self) -> int:
        """Width of the frequency encoding of xyz."""
        return 3 * 2 * self.n_freqs

    @property
    def mlp_in(self) -> int:
        """MLP input width after zero padding."""
        raw = self.spatial_dim + self.encoding_dim
        return math.ceil(raw / self.in_multiple) * self.in_multiple

    @property
    def neurons(self) -> list[int]:
        """Neurons per MLP layer, input to output (padded input and outputs included)."""
        return [self.mlp_in] + [self.width] * self.hidden_layers + [self.out_pad]

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of every linear layer, input to output."""
        dims = self.neurons
        return [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]

    @property
    def hash_per_level_scale(self) -> float:
        if self.hash_levels == 1:
            return 1.0
        return math.exp((math.log(self.hash_max_res) - math.log(self.hash_base_res)) / (self.hash_levels - 1))

    @property
    def hash_resolutions(self) -> list[int]:
        """Grid resolution of every level, as tiny-cuda-nn computes it (ceil(scale) + 1)."""
        s = self.hash_per_level_scale
        return [math.ceil(self.hash_base_res * s**lvl - 1.0 - 1e-6) + 1 for lvl in range(self.hash_levels)]

    @property
    def hash_table_sizes(self) -> list[int]:
        """Entries per level: min(res^3 rounded up to a multiple of 8, 2^log2_size)."""
        cap = 2**self.hash_log2_size
        return [min(math.ceil(r**3 / 8) * 8, cap) for r in self.hash_resolutions]

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name → shape of every stored tensor (the contract of a NeRF file)."""
        shapes: dict[str, tuple[int, ...]] = {}
        if self.family == "triplane":
            shapes["triplane"] = (3, self.plane_res, self.plane_res, self.plane_features)
        elif self.family == "hash":
            for lvl, n in enumerate(self.hash_table_sizes):
                shapes[f"hash.level{lvl}"] = (n, self.hash_features)
        for i, (o, n_in) in enumerate(self.layer_shapes):
            shapes[f"mlp.{i}.weight"] = (o, n_in)
            if self.bias:
                shapes[f"mlp.{i}.bias"] = (o,)
        return shapes

    @property
    def n_params(self) -> int:
        return sum(math.prod(s) for s in self.param_shapes().values())

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> ArchSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise SpecError(f"unknown ArchSpec keys: {_short(', '.join(sorted(unknown)))}")
        if "family" not in d:
            raise SpecError("an ArchSpec needs a 'family'")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"ArchSpec is not valid JSON: {e}") from e
        if not isinstance(d, dict):
            raise SpecError("ArchSpec JSON must be an object")
        return cls.from_dict(d)


def _short(value: object, n: int = 60) -> str:
    """``repr`` of a value cut to ``n`` characters, for error lines."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= n else text[: n - 3] + "..."


# ---- presets -------------------------------------------------------------------------------------
# Paper scale: the released configuration (PAPER.md). Common: no bias, 4 outputs padded to 16.
_PAPER_SEEN = {
    "mlp": ArchSpec("mlp", n_freqs=24, hidden_layers=3, width=64, activation="relu"),
    "triplane": ArchSpec(
        "triplane", n_freqs=48, plane_res=32, plane_features=16, hidden_layers=3, width=64, activation="sine"
    ),
    "hash": ArchSpec(
        "hash",
        hash_levels=4,
        hash_log2_size=12,
        hash_features=2,
        hash_base_res=16,
        hash_max_res=128,
        hidden_layers=3,
        width=64,
        activation="relu",
        in_multiple=16,
    ),
}
# Small scale: sized for 2 CPU cores (every graph <= ~8,000 edges), same relations between variants.
_SMALL_SEEN = {
    "mlp": ArchSpec("mlp", n_freqs=6, hidden_layers=3, width=32, activation="relu"),
    "triplane": ArchSpec(
        "triplane", n_freqs=4, plane_res=12, plane_features=8, hidden_layers=3, width=32, activation="sine"
    ),
    "hash": ArchSpec(
        "hash",
        hash_levels=4,
        hash_log2_size=8,
        hash_features=2,
        hash_base_res=8,
        hash_max_res=64,
        hidden_layers=3,
        width=32,
        activation="relu",
        in_multiple=16,
    ),
}


def _unseen(seen: dict[str, ArchSpec], scale: str) -> dict[str, ArchSpec]:
    m, t, h = seen["mlp"], seen["triplane"], seen["hash"]
    # small: 48 keeps the graph <= ~8k edges; 24, not 16, because width 16 could not fit the objects
    # (median held-out PSNR 21.0 dB over 13 objects, one fit collapsed to 7.4 dB)
    narrow, wide = (32, 128) if scale == "paper" else (24, 48)
    return {
        "mlp_2l": replace(m, hidden_layers=m.hidden_layers - 1),
        "mlp_4l": replace(m, hidden_layers=m.hidden_layers + 1),
        "mlp_w32": replace(m, width=narrow),
        "mlp_w128": replace(m, width=wide),
        "triplane_r16": replace(t, plane_res=t.plane_res // 2),
        "triplane_f8": replace(t, plane_features=t.plane_features // 2),
        "triplane_relu": replace(t, activation="relu"),
        "hash_t11": replace(h, hash_log2_size=h.hash_log2_size - 1),
        "hash_t13": replace(h, hash_log2_size=h.hash_log2_size + 1),
        "hash_l8": replace(h, hash_levels=h.hash_levels * 2),
    }


_REGISTRY: dict[str, dict[str, ArchSpec]] = {
    "paper": {**_PAPER_SEEN, **_unseen(_PAPER_SEEN, "paper")},
    "small": {**_SMALL_SEEN, **_unseen(_SMALL_SEEN, "small")},
}


def get_preset(name: str, scale: str = "small") -> ArchSpec:
    """The ArchSpec of a preset name at a scale (``small`` or ``paper``)."""
    if scale not in _REGISTRY:
        raise SpecError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    if name not in _REGISTRY[scale]:
        raise SpecError(f"unknown architecture {name!r}; presets are {', '.join(PRESETS)}")
    return _REGISTRY[scale][name]


def preset_name(spec: ArchSpec) -> tuple[str, str] | None:
    """(name, scale) of the preset equal to ``spec``, or None for a user-declared spec."""
    for scale, presets in _REGISTRY.items():
        for name, s in presets.items():
            if s == spec:
                return name, scale
    return None


def load_spec(path: str | Path) -> ArchSpec:
    """A user-declared ArchSpec from a JSON file; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text() if path.stat().st_size <= MAX_SPEC_BYTES else None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{path}: unreadable spec file ({e})") from e
    if text is None:
        raise SpecError(f"{path}: larger than {MAX_SPEC_BYTES} bytes; not an ArchSpec file")
    try:
        return ArchSpec.from_json(text)
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from e


def parse_archs(arg: str) -> tuple[list[str], dict[str, ArchSpec]]:
    """Parse ``seen|unseen|all|item,item,...`` where an item is a preset name or an ArchSpec JSON file
    (``*.json``, named by its file stem). Returns the names in order and the declared specs by name."""
    groups = {"seen": list(SEEN), "unseen": list(UNSEEN), "all": list(PRESETS)}
    if arg in groups:
        return groups[arg], {}
    items = [a.strip() for a in arg.split(",") if a.strip()]
    if not items:
        raise SpecError("no architecture given")
    names, declared = [], {}
    for item in items:
        if item.endswith(".json"):
            name = Path(item).stem
            if name in PRESETS or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise SpecError(
                    f"{item}: a declared architecture needs a file name that is not a preset name"
                )
            declared[name] = load_spec(item)
            names.append(name)
        elif item in PRESETS:
            names.append(item)
        else:
            raise SpecError(
                f"unknown architecture {item!r}; presets are {', '.join(PRESETS)} (or seen/unseen/all, "
                "or ArchSpec .json files)"
            )
    return list(dict.fromkeys(names)), declared


def resolve_archs(arg: str) -> list[str]:
    """Parse ``seen|unseen|all|name,name,...`` into preset names (validated)."""
    names, declared = parse_archs(arg)
    if declared:
        raise SpecError("declared architectures (.json) are not accepted here; give preset names")
    return names
