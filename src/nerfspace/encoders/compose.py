"""Encoders as compositions of parts. A part reads one input of a NeRF (``graph``: its parameter graph;
``field``: its field at the probe points; ``invariant``: its capture-invariant features) and writes
``width`` entries of the embedding, trained towards its ``objective`` (two NeRFs of one ``object``, or of
one ``category``); a composition concatenates its parts' outputs in order. Presets are compositions; a
checkpoint stores its composition (`Composition.to_dict`), and one from before compositions is converted on
load (`upgrade_legacy`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from nerfspace.encoders.field import FieldEncoder, FieldEncoderConfig
from nerfspace.encoders.gmn import GMN, GMNConfig
from nerfspace.encoders.gmn_fused import FusedGMN
from nerfspace.encoders.invariant import InvariantEncoder, InvariantEncoderConfig
from nerfspace.errors import InputError

PartConfig = GMNConfig | FieldEncoderConfig | InvariantEncoderConfig
PARTS: dict[str, tuple[type, type[nn.Module]]] = {
    "gmn": (GMNConfig, GMN),
    "field": (FieldEncoderConfig, FieldEncoder),
    "invariant": (InvariantEncoderConfig, InvariantEncoder),
}
INPUTS = ("graph", "field", "invariant")


def part_key(part: PartConfig) -> str:
    """A part's name in a composition: its kind, and its objective unless that is ``object``."""
    return part.kind if part.objective == "object" else f"{part.kind}_{part.objective}"


@dataclass(frozen=True)
class Composition:
    parts: tuple[PartConfig, ...]

    def __post_init__(self) -> None:
        keys = [part_key(p) for p in self.parts]
        if not keys:
            raise InputError("an encoder composition needs at least one part")
        if len(set(keys)) != len(keys):
            raise InputError(f"an encoder composition holds each kind of part once per objective, got {keys}")
        if all(p.objective != "object" for p in self.parts):
            raise InputError("an encoder composition needs a part whose objective is object")

    @property
    def width(self) -> int:
        """The embedding's width: the parts' widths summed."""
        return sum(p.width for p in self.parts)

    @property
    def needs(self) -> tuple[str, ...]:
        """The inputs its parts read, in `INPUTS` order: only these are ever built."""
        return tuple(i for i in INPUTS if any(p.reads == i for p in self.parts))

    def slices(self) -> dict[str, slice]:
        """Where each part's entries lie in the embedding, by `part_key`."""
        out, start = {}, 0
        for p in self.parts:
            out[part_key(p)] = slice(start, start + p.width)
            start += p.width
        return out

    def columns(self, objective: str) -> list[int]:
        """The embedding's entries written by the parts of one objective (empty if none)."""
        where = self.slices()
        return [
            i for p in self.parts if p.objective == objective for i in range(self.width)[where[part_key(p)]]
        ]

    def describe(self) -> str:
        """One line: the parts and their widths."""
        return " + ".join(f"{part_key(p)} ({p.width})" for p in self.parts)

    def to_dict(self) -> dict:
        return {"parts": [{"kind": p.kind, **asdict(p)} for p in self.parts]}

    @classmethod
    def from_dict(cls, d: Any) -> Composition:
        """The composition a checkpoint stored; one clear error for anything else."""
        if not isinstance(d, dict) or not isinstance(d.get("parts"), list):
            raise InputError(f"not an encoder composition: {str(d):.80}")
        parts = []
        for p in d["parts"]:
            if not isinstance(p, dict) or p.get("kind") not in PARTS:
                raise InputError(f"unknown encoder part {str(p):.80}; parts are {', '.join(PARTS)}")
            config_cls = PARTS[p["kind"]][0]
            try:
                parts.append(config_cls(**{k: v for k, v in p.items() if k != "kind"}))
            except TypeError as e:
                raise InputError(f"encoder part {p['kind']}: {e}") from e
        return cls(tuple(parts))


PRESETS = {
    "small": Composition((GMNConfig(), FieldEncoderConfig())),
    "paper": Composition((GMNConfig(hidden=128, width=1024, probes=False, output_readout=False),)),
    "field": Composition((FieldEncoderConfig(),)),
    "invariant": Composition((InvariantEncoderConfig(), InvariantEncoderConfig(objective="category"))),
}
DEFAULT_PRESET = "small"


def preset(name: str) -> Composition:
    if name not in PRESETS:
        raise InputError(f"unknown encoder preset {name!r:.40}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]


class ComposedEncoder(nn.Module):
    """Inputs (a dict with the composition's `needs`) -> embeddings [B, width], the parts' outputs
    concatenated. ``fused``: GMN parts run the opt-in CPU inference kernel (`gmn_fused`)."""

    def __init__(self, composition: Composition, fused: bool = False):
        super().__init__()
        self.composition = composition
        self.parts = nn.ModuleDict()
        for p in composition.parts:
            module_cls = FusedGMN if fused and p.kind == "gmn" else PARTS[p.kind][1]
            self.parts[part_key(p)] = module_cls(p)

    def forward(self, inputs: dict[str, Any]) -> torch.Tensor:
        return torch.cat([part(inputs[part.config.reads]) for part in self.parts.values()], 1)

    def flops(self, inputs: dict[str, Any]) -> int:
        """Multiply-add FLOPs of the matrix products of one forward pass, summed over the parts."""
        return sum(part.flops(inputs[part.config.reads]) for part in self.parts.values())


def upgrade_legacy(
    config: dict, state: dict[str, torch.Tensor], prefix: str = "encoder."
) -> tuple[dict, dict]:
    """A checkpoint's encoder config and weights from before compositions (one GMN with a ``field_readout``
    flag) -> the composition computing the same function, and its weights. Others pass through."""
    if "parts" in config:
        return config, state
    try:
        field = bool(config.get("field_readout", False))
        hidden = config["hidden"]
        gmn = GMNConfig(
            hidden=hidden,
            blocks=config["blocks"],
            width=config["embed_dim"] - (4 * hidden if field else 0),
            n_freqs=config["n_freqs"],
            precision=config.get("precision", "fp32"),
            probes=config.get("probes", True),
            output_readout=config.get("output_readout", True),
        )
    except (KeyError, TypeError) as e:
        raise InputError(f"not an encoder config: {str(config):.80}") from e
    parts = (gmn, FieldEncoderConfig(hidden=hidden)) if field else (gmn,)
    renamed = {}
    for k, v in state.items():
        if k.startswith(prefix + "field_in."):
            k = prefix + "parts.field.mlp." + k[len(prefix + "field_in.") :]
        elif k.startswith(prefix):
            k = prefix + "parts.gmn." + k[len(prefix) :]
        renamed[k] = v
    return Composition(parts).to_dict(), renamed
