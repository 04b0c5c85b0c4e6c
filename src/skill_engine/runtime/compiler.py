"""Compiles components to native code in a child process, one at a time, into an on-disk cache.

Compiling a 46 MB Python skill costs ~10 s of CPU and leaves ~400 MB of RSS behind, so it never runs in
the serving process. The child runs at lower CPU priority; its artifact goes to `ArtifactCache` keyed by
the wasm's hash and the engine fingerprint, so a restart loads a skill in milliseconds. Every process
sharing the directory (workers, `skill-engine compile`) compiles under the artifact's cross-process lock
(runtime/cache_lock.py) and re-checks the cache once it holds it: a skill compiles once per host.

Run as a module, it is the child: `python -m skill_engine.runtime.compiler SRC.wasm DST.cwasm`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from skill_engine.errors import SkillLoadError
from skill_engine.runtime import artifacts
from skill_engine.runtime.cache_lock import locked_async
from skill_engine.runtime.engine import FINGERPRINT
from skill_engine.single_flight import SingleFlight

log = logging.getLogger("skill_engine.compiler")

NOT_A_COMPONENT = "Web Assembly is not a component."


class ArtifactCache:
    """Compiled artifacts on disk: owner-only, written atomically, bounded by size (least recently used)."""

    def __init__(self, directory: Path, size_limit: int) -> None:
        self.directory = directory
        self.size_limit = size_limit
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Deserialising trusts the file: nobody else may write here.
        os.chmod(directory, 0o700)

    def path_for(self, wasm_digest: str) -> Path:
        return self.directory / f"{wasm_digest}-{FINGERPRINT}.cwasm"

    def lock_path(self, wasm_digest: str) -> Path:
        """The file to `flock` while producing `path_for(wasm_digest)` (see runtime/cache_lock.py)."""
        return self.directory / f"{wasm_digest}-{FINGERPRINT}.lock"

    def lookup(self, wasm_digest: str) -> Path | None:
        path = self.path_for(wasm_digest)
        if not artifacts.verified(path, wasm_digest):  # shared caches: check before trusting (artifacts.py)
            return None
        os.utime(path)  # recency for eviction
        return path

    def evict_to_limit(self) -> None:
        entries = []
        for path in self.directory.glob("*.cwasm"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.size_limit:
                break
            artifacts.discard(path)
            total -= size
            log.info("evicted compiled artifact %s from the disk cache", path.name)


class Compiler:
    """Turns wasm bytes into a cached artifact path; concurrent requests for the same bytes share one run."""

    def __init__(self, cache: ArtifactCache) -> None:
        self.cache = cache
        self._one_at_a_time = asyncio.Lock()
        self._inflight: SingleFlight[str, Path] = SingleFlight()
        self.compilations = 0
        """Real compilations so far (`skill-engine compile` tells compiled from up to date by it)."""
        self.on_compiled: Callable[[str, float], None] | None = None
        """Called with (skill label, seconds) after each real compilation (metrics)."""

    async def compiled(self, wasm: bytes, label: str) -> Path:
        # Off the event loop: hashing tens of MB would stall every other request (sha256 drops the GIL).
        digest = await asyncio.to_thread(_sha256, wasm)
        cached = self.cache.lookup(digest)
        if cached is not None:
            return cached
        return await self._inflight.run(digest, lambda: self._compile(wasm, digest, label))

    async def _compile(self, wasm: bytes, digest: str, label: str) -> Path:
        async with self._one_at_a_time, locked_async(self.cache.lock_path(digest)):
            cached = self.cache.lookup(digest)
            if cached is not None:
                log.info("%s was compiled meanwhile by another process", label)
                return cached
            destination = self.cache.path_for(digest)
            with tempfile.NamedTemporaryFile(dir=self.cache.directory, suffix=".wasm") as source:
                await asyncio.to_thread(_write, source, wasm)
                started = time.monotonic()
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "skill_engine.runtime.compiler",
                    source.name,
                    str(destination),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                try:
                    _, stderr = await process.communicate()
                except asyncio.CancelledError:
                    process.kill()
                    await process.wait()
                    raise
            elapsed = time.monotonic() - started
            if process.returncode != 0:
                message = stderr.decode("utf-8", "replace").strip() or f"compiler exited {process.returncode}"
                log.error("compiling %s failed after %.1f s: %s", label, elapsed, message)
                raise SkillLoadError(message)
            log.info("compiled %s in %.1f s", label, elapsed)
            self.compilations += 1
            if self.on_compiled is not None:
                self.on_compiled(label, elapsed)
            self.cache.evict_to_limit()
            return destination


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(file: IO[bytes], data: bytes) -> None:
    file.write(data)
    file.flush()


def _compile_file(source: str, destination: str) -> int:
    """The child process: compile, serialise, write atomically. Prints a user-facing error on failure."""
    import wasmtime
    from wasmtime.component import Component

    from skill_engine.runtime.engine import make_config

    with contextlib.suppress(OSError):
        os.nice(10)  # compiling must never slow down serving
    engine = wasmtime.Engine(make_config())
    with open(source, "rb") as f:
        head = f.read(8)
    # A core module starts with version 1; a component with layer 1 (bytes 4..8 = 0d 00 01 00).
    if head[:4] == b"\0asm" and head[4:8] == b"\x01\x00\x00\x00":
        print(NOT_A_COMPONENT, file=sys.stderr)
        return 2
    try:
        component = Component.from_file(engine, source)
    except wasmtime.WasmtimeError as e:
        print(f"Error decoding Wasm component: {e}", file=sys.stderr)
        return 2
    data = component.serialize()
    wasm_digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    artifacts.write(Path(destination), wasm_digest, data)  # with its record, both atomically
    return 0


if __name__ == "__main__":
    sys.exit(_compile_file(sys.argv[1], sys.argv[2]))
