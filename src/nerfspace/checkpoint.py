"""Checkpoints of a run. ``RUN/checkpoints/{best,last}.safetensors`` hold the model weights and, in
one sorted-JSON metadata key, the run's config (its encoder composition under ``train.encoder``), epoch
and validation metrics: what an `Encoder` needs. Checkpoints from before compositions are converted on
load (`nerfspace.encoders.upgrade_legacy`).
``RUN/checkpoints/resume.pt`` adds the optimizer, schedule and step for ``--resume``; it is our own
file and is read with ``weights_only=True`` all the same.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from nerfspace.atomic import atomic_write_bytes
from nerfspace.encoders import upgrade_legacy
from nerfspace.errors import FileFormatError, InputError
from nerfspace.tagged import read_tagged, write_tagged

FORMAT = "nerfspace-encoder/1"


def save_weights(path: Path, state: dict[str, torch.Tensor], meta: dict) -> None:
    write_tagged(path, state, FORMAT, meta)


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint file, or a run folder (its best checkpoint, else its last)."""
    path = Path(path)
    if path.is_dir():
        for name in ("best", "last"):
            f = path / "checkpoints" / f"{name}.safetensors"
            if f.exists():
                return f
        raise InputError(f"{path}: no checkpoint in this run folder (checkpoints/best.safetensors)")
    if not path.exists():
        raise InputError(f"{path}: no such checkpoint or run folder")
    return path


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Weights and metadata of a checkpoint file (converted if from before compositions); a clear error
    for anything else."""
    state, meta = read_tagged(path, FORMAT, "nerfspace encoder checkpoint")
    encoder = meta.get("train", {}).get("encoder") if isinstance(meta.get("train"), dict) else None
    if not isinstance(encoder, dict):
        raise InputError(f"{path}: checkpoint metadata lacks the encoder's composition (train.encoder)")
    meta["train"]["encoder"], state = upgrade_legacy(encoder, state)
    return state, meta


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``state`` into ``module``, refusing (one line) weights of another configuration."""
    own = module.state_dict()
    bad = [k for k in own if k not in state or state[k].shape != own[k].shape]
    extra = [k for k in state if k not in own]
    if bad or extra:
        raise InputError(
            f"{source}: checkpoint is from another encoder configuration "
            f"({len(bad)} tensors missing or of another shape, {len(extra)} unexpected, "
            f"e.g. {(bad + extra)[0]})"
        )
    module.load_state_dict(state)


def save_resume(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_resume(path: Path) -> dict:
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read it means the same thing to the user
        raise FileFormatError(f"{path}: cannot resume from this file ({e})") from e
