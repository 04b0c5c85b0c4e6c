"""Compiled artifacts that several engines may share (a ReadWriteMany volume), checked before they are loaded.

Deserialising an artifact runs its native code unchecked, so an engine loads only an artifact whose
record says it was compiled from this wasm by an engine with this fingerprint, and whose bytes hash to
what the record says. Next to `<wasm sha256>-<fingerprint>.cwasm` the compiler writes
`<wasm sha256>-<fingerprint>.json`:

    {"wasm": "sha256:<hex>", "fingerprint": "<engine fingerprint>", "wasmtime": "<version>",
     "artifact": "sha256:<hex of the .cwasm bytes>", "size": <bytes>}

Anything else (no record, another fingerprint, a different hash, a partial copy) is ignored and compiled
afresh. A file's check is remembered while its inode, size and mtime stay the same, so a process hashes
each artifact once, not at every load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from skill_engine.runtime.engine import FINGERPRINT, WASMTIME_VERSION

log = logging.getLogger("skill_engine.compiler")

_verified: dict[tuple[Path, str], tuple[int, int, int]] = {}


def record_path(artifact: Path) -> Path:
    return artifact.with_suffix(".json")


def _identity(stat: os.stat_result) -> tuple[int, int, int]:
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _drop_cached_pages(fd: int) -> None:
    """Drops the file's clean pages from the page cache once we have written or hashed it whole.

    Writing or reading a file in big pieces leaves it cached in large folios (1-2 MiB on Linux 6.18 with
    ext4), and a fault in the engine's mapping of an artifact then maps the whole folio: a skill that
    touches a few MiB of its 54 MiB artifact kept ~23 MiB resident per cached skill. After this, the
    mapping faults in only what the skill touches (~8 MiB); bench/RESULTS.md, "Session 5 — cached skills".
    """
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no posix_fadvise (not Linux)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
        _drop_cached_pages(f.fileno())
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".partial")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fdatasync(out.fileno())
        _drop_cached_pages(out.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def write(artifact: Path, wasm_digest: str, data: bytes) -> None:
    """Writes the record, then the artifact, each atomically: a reader never sees an artifact unrecorded."""
    record = {
        "wasm": f"sha256:{wasm_digest}",
        "fingerprint": FINGERPRINT,
        "wasmtime": WASMTIME_VERSION,
        "artifact": f"sha256:{hashlib.sha256(data).hexdigest()}",
        "size": len(data),
    }
    _atomic_write(record_path(artifact), json.dumps(record, sort_keys=True).encode())
    _atomic_write(artifact, data)


def verified(artifact: Path, wasm_digest: str) -> bool:
    """Whether `artifact` may be deserialised by this engine for the wasm with `wasm_digest`."""
    try:
        stat = artifact.stat()
    except FileNotFoundError:
        return False
    if _verified.get((artifact, wasm_digest)) == _identity(stat):
        return True
    problem = _problem(artifact, wasm_digest, stat)
    if problem is not None:
        log.warning("ignoring compiled artifact %s: %s", artifact.name, problem)
        return False
    _verified[(artifact, wasm_digest)] = _identity(stat)
    return True


def _problem(artifact: Path, wasm_digest: str, stat: os.stat_result) -> str | None:
    try:
        record = json.loads(record_path(artifact).read_bytes())
    except FileNotFoundError:
        return "it has no record"
    except (OSError, ValueError) as e:
        return f"its record is unreadable ({e})"
    if not isinstance(record, dict):
        return "its record is not an object"
    if record.get("fingerprint") != FINGERPRINT:
        return f"engine fingerprint {record.get('fingerprint')!r}, this engine's is {FINGERPRINT}"
    if record.get("wasm") != f"sha256:{wasm_digest}":
        return f"compiled from {record.get('wasm')!r}, not sha256:{wasm_digest}"
    if record.get("size") != stat.st_size:
        return f"{stat.st_size} bytes, its record says {record.get('size')!r}"
    actual = f"sha256:{_sha256_file(artifact)}"
    if record.get("artifact") != actual:
        return f"its content hashes to {actual}, its record says {record.get('artifact')!r}"
    return None


def discard(artifact: Path) -> None:
    """Removes an artifact and its record (an ignored artifact is replaced by a fresh compilation)."""
    for key in [key for key in _verified if key[0] == artifact]:
        del _verified[key]
    for path in (artifact, record_path(artifact)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
