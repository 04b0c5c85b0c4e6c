"""A skill file being copied into a watched directory is read once it is whole (skills/registry.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from skill_engine.skills.registry import SETTLE_SECONDS, DirectoryRegistry, RegistryError


def test_a_file_written_in_two_steps_is_loaded_whole(tmp_path: Path) -> None:
    """As `cp` writes a large file: the first half, a pause, the rest. A load that starts in the pause
    returns all of it, not the first half."""
    payload = os.urandom(256 * 1024)
    file = tmp_path / "copying.wasm"
    with file.open("wb") as f:
        f.write(payload[: len(payload) // 2])

    def finish() -> None:
        time.sleep(SETTLE_SECONDS / 2)
        with file.open("ab") as f:
            f.write(payload[len(payload) // 2 :])

    writer = threading.Thread(target=finish)
    writer.start()
    try:
        pulled = DirectoryRegistry(tmp_path)._load("copying")
    finally:
        writer.join()
    assert pulled is not None
    assert pulled.wasm == payload
    assert pulled.digest == str(file.stat().st_mtime_ns // 1_000_000)


def test_a_settled_file_is_read_at_once(tmp_path: Path) -> None:
    file = tmp_path / "done.wasm"
    file.write_bytes(b"\0asm")
    past = time.time() - 60
    os.utime(file, (past, past))
    started = time.monotonic()
    pulled = DirectoryRegistry(tmp_path)._load("done")
    assert pulled is not None and pulled.wasm == b"\0asm"
    assert time.monotonic() - started < SETTLE_SECONDS


def test_a_file_that_keeps_changing_fails_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("skill_engine.skills.registry.SETTLE_LIMIT_SECONDS", 1.0)
    file = tmp_path / "busy.wasm"
    file.write_bytes(b"x")
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.is_set():
            with file.open("ab") as f:
                f.write(b"x")
            time.sleep(0.01)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        advice = r"kept changing for 1 s; write it elsewhere and rename it into the directory"
        with pytest.raises(RegistryError, match=advice):
            DirectoryRegistry(tmp_path)._load("busy")
    finally:
        stop.set()
        writer.join()
