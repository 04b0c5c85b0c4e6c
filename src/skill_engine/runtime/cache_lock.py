"""A cross-process lock per compiled artifact, so a skill compiles once per host, not once per worker.

`fcntl.flock` on a lock file next to the artifact: held while one process compiles, every other process
(another worker, `skill-engine compile`, a second engine sharing the directory) waits and then finds the
artifact. The kernel drops the lock when its holder dies, so a killed compiler never wedges the others.
Lock files are empty and are never deleted (deleting a lock file while someone waits on it breaks flock).
Works on local filesystems; on NFS, flock is emulated with POSIX locks (Linux ≥ 2.6.12), which also works.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

_POLL_START = 0.02
_POLL_MAX = 0.25


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Holds the exclusive lock on `path` (created if missing), blocking until it is free."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.asynccontextmanager
async def locked_async(path: Path) -> AsyncIterator[None]:
    """Like `locked`, without blocking the event loop: polls with a growing interval (cancellable)."""
    fd = _open(path)
    try:
        delay = _POLL_START
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
        yield
    finally:
        os.close(fd)
