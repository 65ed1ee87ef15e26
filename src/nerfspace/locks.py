"""Exclusive locks on output folders: two nerfspace processes never write one folder at once.

The lock is an advisory `flock` on ``FOLDER/.nerfspace.lock``, which holds the owner's pid for the error
message. The kernel releases it when the owner exits, however it exits, so a lock is never stale; the
file itself stays (removing it while another process opens it would let two owners in).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nerfspace.errors import InputError

LOCK_NAME = ".nerfspace.lock"


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold the lock of ``folder`` (created if missing) for the block; an `InputError` naming the owner's
    pid if another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as e:  # a symlink or something else where the lock file belongs
        raise InputError(f"{folder / LOCK_NAME}: cannot be used as a lock file ({e.strerror})") from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 16, 0).decode(errors="replace").strip() or "unknown"
            raise InputError(
                f"{folder}: in use by another nerfspace process (pid {owner}); wait or use another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
