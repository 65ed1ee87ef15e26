"""The one place where nerfspace reads and writes PyTorch pickles (``.pth``/``.pt``); reads always use
``weights_only=True``.

A file that would need arbitrary Python objects (and so could run code while loading) is refused
before anything in it runs; sparse tensors are checked (indices in range) as they are loaded, before any
other code touches them; a tensor declaring more than `MAX_ELEMENTS` elements (e.g. a stride-0 view of
one stored number) is refused before anything materialises it; any other failure to read is an
`InputError` naming the file.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch

from nerfspace.atomic import atomic_write_bytes
from nerfspace.errors import FileFormatError, SpecMismatchError, UnsafeFileError, access_error

MAX_ELEMENTS = 512**3  # elements one tensor of a foreign file may declare (a 512^3 occupancy grid)


def load_torch(path: Path) -> object:
    """The tensors and plain containers (dict, list, tuple, numbers, strings) in a PyTorch file."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with torch.sparse.check_sparse_tensor_invariants():  # indices out of range would crash natively
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "global" in str(e).lower():  # the weights-only unpickler met a class or function to call
            raise UnsafeFileError(
                f"{path}: refused: the file holds Python objects other than tensors (they could run code); "
                "only weights are loaded"
            ) from e
        raise FileFormatError(f"{path}: not a readable PyTorch file (not a valid weights-only pickle)") from e
    except PermissionError as e:
        raise access_error(e) from e
    except Exception as e:  # noqa: BLE001 - any failure to parse a foreign file is bad input
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise FileFormatError(
            f"{path}: not a readable PyTorch file (truncated or corrupted: {reason[:120]})"
        ) from e
    _check_sizes(path, obj)
    return obj


def _check_sizes(path: Path, obj: object, depth: int = 0) -> None:
    """Refuse tensors (in nested dicts, lists and tuples) that declare more than `MAX_ELEMENTS`."""
    if isinstance(obj, torch.Tensor):
        if obj.numel() > MAX_ELEMENTS:
            raise FileFormatError(
                f"{path}: a tensor of shape {tuple(obj.shape)} declares {obj.numel():,} elements;"
                f" the limit is {MAX_ELEMENTS:,}"
            )
    elif isinstance(obj, dict | list | tuple) and depth < 8:
        for value in obj.values() if isinstance(obj, dict) else obj:
            _check_sizes(path, value, depth + 1)


def tensor_dict(path: Path, obj: object) -> dict[str, torch.Tensor]:
    """``obj`` as a dict of named tensors (a state dict), or a `FileFormatError` naming ``path``."""
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise FileFormatError(f"{path}: expected a dict of named tensors, found {type(obj).__name__}")
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise FileFormatError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
    return obj


def as_float32(path: Path, name: str, t: torch.Tensor) -> torch.Tensor:
    """A dense float32 copy of a floating-point tensor (float16/bfloat16/float64 are converted)."""
    if t.is_sparse or not t.is_floating_point():
        raise SpecMismatchError(
            f"{path}: tensor {name!r} has dtype {t.dtype}, expected a dense floating-point tensor"
        )
    return t.detach().to(torch.float32).contiguous()


def save_torch(path: Path, obj: object) -> None:
    """Atomically write ``obj`` (tensors and plain containers only) with `torch.save`."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
