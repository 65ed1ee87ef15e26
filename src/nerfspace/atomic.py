"""Atomic file writes: a crash leaves the old file or the new one, never a partial one.

A write goes to ``.<name>.<pid>.<random>.tmp`` beside the target and is renamed over it. A process
killed mid-write leaves that temp file behind; `sweep_temps` removes the ones whose writer is gone
(a live writer's temp file is never touched, so folders shared by processes stay safe; one whose
name carries no pid is from an older version and removed as well).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

_TEMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename, so a
    crash leaves either the old file or the new one, never a partial one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a product follows the umask like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a pid no process can have
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def sweep_temps(folder: Path, pattern: str = ".*.tmp") -> int:
    """Remove the temp files (matching ``pattern``) in ``folder`` left by killed writers; returns how
    many. A missing folder has none."""
    removed = 0
    for p in Path(folder).glob(pattern):
        m = _TEMP.match(p.name)
        if not (m and _alive(int(m.group(1)))):
            p.unlink(missing_ok=True)
            removed += 1
    return removed
