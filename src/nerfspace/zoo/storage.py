"""One NeRF, one safetensors file: its tensors, its bit-packed occupancy grid, and in the metadata its
ArchSpec, object id, category, fit mode, PSNR and seed. Loading validates everything, so a truncated,
corrupted or inconsistent file fails with one clear `InputError` (of its family in `nerfspace.errors`)
instead of a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from nerfspace import fields
from nerfspace.archs import ArchSpec, preset_name
from nerfspace.atomic import atomic_write_bytes
from nerfspace.errors import (
    FileFormatError,
    NonFiniteError,
    SpecError,
    SpecMismatchError,
    access_error,
)
from nerfspace.render import Cameras, pack_bits, render_images, unpack_bits

FORMAT = "nerfspace-nerf/1"
META_KEY = "nerfspace"
OCC_KEY = "occupancy"
DIGEST_KEY = "sha256"  # of the tensors (`tensor_digest`): a flipped bit in their data is caught on load
FILE_KEYS = ("spec", "format", "occ_res", DIGEST_KEY)  # metadata of the file itself, not of the NeRF


@dataclass
class NeRF:
    """A single NeRF: its spec, parameters (no batch dim), occupancy grid [R, R, R] and metadata."""

    spec: ArchSpec
    params: dict[str, torch.Tensor]
    occupancy: torch.Tensor
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def preset(self) -> str:
        """Preset name, or ``custom`` for a user-declared spec."""
        found = preset_name(self.spec)
        return found[0] if found else "custom"

    def batched(self) -> dict[str, torch.Tensor]:
        """Parameters with a leading batch dim of 1, as `nerfspace.fields` expects."""
        return {n: t[None] for n, t in self.params.items()}

    def field(self):
        """This NeRF as a field for the renderer: ``(x [M, 3], net [M] of zeros) -> (rgb, sigma)``."""
        params = self.batched()
        return lambda x, net: fields.query(self.spec, params, x, net)

    def render(self, cams: Cameras, samples_per_diagonal: int = 128) -> torch.Tensor:
        """Images [V, H, W, 3] of this NeRF seen from ``cams``."""
        return render_images(self.field(), 1, cams, self.occupancy[None], samples_per_diagonal)[0]


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_nerf(path: Path, nerf: NeRF) -> None:
    """Atomically write ``nerf`` to ``path`` (.safetensors)."""
    tensors = {n: t.detach().to(torch.float32).contiguous() for n, t in nerf.params.items()}
    tensors[OCC_KEY] = pack_bits(nerf.occupancy.bool())
    meta = {
        **nerf.meta,
        "format": FORMAT,
        "spec": nerf.spec.to_json(),
        "occ_res": str(nerf.occupancy.shape[-1]),
        DIGEST_KEY: tensor_digest(tensors),
    }
    # one metadata key holding sorted JSON: safetensors writes several keys in arbitrary order, and
    # the same NeRF must give the same bytes
    atomic_write_bytes(Path(path), save(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True)}))


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata of a NeRF file without reading its tensors (fast)."""
    path = Path(path)
    try:
        with safe_open(path, framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
    except FileNotFoundError as e:
        raise FileFormatError(f"{path}: no such file") from e
    except IsADirectoryError as e:
        raise FileFormatError(f"{path}: is a directory, not a NeRF file") from e
    except PermissionError as e:
        raise access_error(e) from e
    except (SafetensorError, OSError, ValueError) as e:
        raise FileFormatError(f"{path}: not a readable NeRF file (truncated or corrupted: {e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FileFormatError(f"{path}: not a nerfspace NeRF file")
    return meta


def check_params(path: Path | str, spec: ArchSpec, tensors: dict[str, torch.Tensor]) -> None:
    """Raise a `SpecMismatchError` (`NonFiniteError`) naming ``path`` and the first tensor (in
    ``spec.param_shapes()`` order) that is missing, unexpected, of a wrong shape,
    not float32 (or not finite)."""
    expected = spec.param_shapes()
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise SpecMismatchError(
            f"{path}: tensors do not match the spec (missing {missing}, unexpected {extra})"
        )
    for name, shape in expected.items():
        t = tensors[name]
        if tuple(t.shape) != shape:
            raise SpecMismatchError(
                f"{path}: tensor {name!r} has shape {tuple(t.shape)}, the spec needs {shape}"
            )
        if t.dtype != torch.float32:
            raise SpecMismatchError(f"{path}: tensor {name!r} has dtype {t.dtype}, expected float32")
        if not torch.isfinite(t).all():
            raise NonFiniteError(f"{path}: tensor {name!r} holds NaN or Inf values")


def load_nerf(path: Path) -> NeRF:
    """Read and validate a NeRF file: checksum, spec, tensor names, shapes, dtypes, finiteness, occupancy."""
    path = Path(path)
    meta = read_metadata(path)
    try:
        spec = ArchSpec.from_json(meta["spec"])
        res = int(meta["occ_res"])
    except SpecError as e:
        raise SpecError(f"{path}: {e}") from e
    except (KeyError, ValueError, TypeError) as e:
        raise FileFormatError(f"{path}: bad NeRF metadata ({e})") from e
    try:
        with safe_open(path, framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except PermissionError as e:
        raise access_error(e) from e
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise FileFormatError(f"{path}: not a readable NeRF file (truncated or corrupted: {e})") from e
    bits = tensors.pop(OCC_KEY, None)
    if bits is None or bits.dtype != torch.uint8 or bits.numel() * 8 != res**3:
        raise FileFormatError(f"{path}: missing or malformed occupancy grid")
    check_params(path, spec, tensors)
    # last, so a file edited by a tool (which keeps the old checksum) gets the specific reason above
    if DIGEST_KEY in meta and meta[DIGEST_KEY] != tensor_digest({**tensors, OCC_KEY: bits}):
        raise FileFormatError(f"{path}: corrupted: the tensors do not match their checksum")
    occupancy = unpack_bits(bits, res)
    return NeRF(spec, tensors, occupancy, {k: v for k, v in meta.items() if k not in FILE_KEYS})
