"""Atomic file writes: a crash leaves the old file or the new one, never a partial one.

A write goes to ``.nerfspace-tmp.<name>.<pid>.<random>.tmp`` beside the target and is renamed over it.
A process killed mid-write leaves that temp file behind; `sweep_temps` removes the ones whose writer is
gone. It removes nothing else: not a live writer's temp file (folders shared by processes stay safe), not
a user's own ``.*.tmp`` files (only names with nerfspace's prefix and a pid are ours), and it follows no
symlink (a linked folder is not swept, a linked temp name is left alone).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

TEMP_PREFIX = ".nerfspace-tmp."
_TEMP = re.compile(r"^\.nerfspace-tmp\.(.+)\.(\d+)\.[^.]+\.tmp$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and an atomic rename, so a
    crash leaves either the old file or the new one, never a partial one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f"{TEMP_PREFIX}{path.name}.{os.getpid()}.", suffix=".tmp"
    )
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


def sweep_temps(folder: Path, target: str | None = None) -> int:
    """Remove the temp files in ``folder`` (of writes to the file named ``target``, else of any) left by
    killed writers; returns how many. A missing or symlinked folder has none."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return 0
    removed = 0
    for p in folder.glob(f"{TEMP_PREFIX}*.tmp"):
        m = _TEMP.match(p.name)
        if m and (target is None or m.group(1) == target) and not p.is_symlink() and p.is_file():
            if not _alive(int(m.group(2))):
                p.unlink(missing_ok=True)
                removed += 1
    return removed
