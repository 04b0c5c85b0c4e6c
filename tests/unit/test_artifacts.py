"""Compiled artifacts leave no cached pages behind once written or checked (artifacts._drop_cached_pages)."""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import sys
from pathlib import Path

import pytest

from skill_engine.runtime import artifacts
from skill_engine.runtime.engine import FINGERPRINT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="page-cache residency via mincore")

SIZE = 16 * 1024 * 1024


def cached_fraction(path: Path) -> float:
    """Share of the file's pages in the page cache (mincore on a mapping that touches none of them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    with path.open("rb") as f, mmap.mmap(f.fileno(), size, flags=mmap.MAP_PRIVATE) as mapped:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
        vector = ctypes.create_string_buffer(pages)
        assert libc.mincore(address, size, vector) == 0, os.strerror(ctypes.get_errno())
        resident = sum(byte & 1 for byte in vector.raw)
        del address  # the buffer export must end before the mapping closes
    return resident / pages


def test_a_written_artifact_is_not_left_in_the_page_cache(tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    path = tmp_path / f"{'a' * 64}-{FINGERPRINT}.cwasm"
    artifacts.write(path, hashlib.sha256(b"wasm").hexdigest(), data)
    assert path.stat().st_size == SIZE
    plain = tmp_path / "plain.bin"
    plain.write_bytes(data)
    assert cached_fraction(plain) > 0.9  # how a plain write leaves a file: the check can see it
    assert cached_fraction(path) < 0.1
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_checking_an_artifact_leaves_it_out_of_the_page_cache(tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    wasm_digest = hashlib.sha256(b"other wasm").hexdigest()
    path = tmp_path / f"{'b' * 64}-{FINGERPRINT}.cwasm"
    artifacts.write(path, wasm_digest, data)
    (tmp_path / "copy").write_bytes(path.read_bytes())  # reads it whole: cached again
    assert cached_fraction(path) > 0.9
    assert artifacts.verified(path, wasm_digest)  # hashes the whole file
    assert cached_fraction(path) < 0.1
