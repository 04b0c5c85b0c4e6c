"""The append-only audit trail: one JSON line per invocation in `AUDIT_LOG`, rotated by size.

Several worker processes may append to the same file. Each record is one `write(2)` on a descriptor
opened with `O_APPEND`, so records never split or interleave. Rotation renames the file under an
exclusive `flock` of `<file>.lock`; writers hold the shared lock while they write and reopen when the
path no longer names the file they hold (another process rotated it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("skill_engine.audit")


class AuditLog:
    def __init__(self, path: Path, max_bytes: int = 100 * 1024 * 1024, backups: int = 5) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = -1
        self._inode: tuple[int, int] | None = None
        self._mutex = threading.Lock()
        self.also: list[Callable[[dict[str, Any]], None]] = []
        """Other sinks of every record (OTLP log records)."""

    def _open(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        st = os.fstat(self._fd)
        self._inode = (st.st_dev, st.st_ino)

    def _current(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._inode

    def write(self, record: dict[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        with self._mutex:
            try:
                self._append(line)
            except OSError as e:
                log.error("audit record could not be written to %s: %s", self.path, e)
        for sink in self.also:
            try:
                sink(record)
            except Exception:
                log.exception("audit sink failed")

    def _append(self, line: bytes) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
        try:
            if self._fd < 0 or not self._current():
                self._open()
            written = os.write(self._fd, line)
            size = os.fstat(self._fd).st_size
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if written != len(line):
            log.error("audit record truncated (%d of %d bytes)", written, len(line))
        if size >= self.max_bytes:
            self._rotate()

    def _rotate(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            # Another process may have rotated while we waited for the lock.
            if self._current() and os.fstat(self._fd).st_size >= self.max_bytes:
                for n in range(self.backups - 1, 0, -1):
                    older = Path(f"{self.path}.{n}")
                    if older.exists():
                        older.replace(f"{self.path}.{n + 1}")
                self.path.replace(f"{self.path}.1")
            self._open()
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._mutex:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1


def files(path: Path) -> list[Path]:
    """The trail's files, oldest first: `<path>.N` … `<path>.1`, `<path>`."""
    rotated = sorted(
        (p for p in path.parent.glob(path.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    return [*rotated, *([path] if path.exists() else [])]
