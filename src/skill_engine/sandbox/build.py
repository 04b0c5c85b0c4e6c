"""Builds the code sandbox component from the guest shipped in this package, once per guest version.

The guest (`guest/sandbox_guest.py` + `guest/wit/sandbox.wit`) is built with componentize-py (a runtime
dependency, the version the pharia-skill SDK uses) into `<cache>/sandbox-<hash>.wasm`, the hash covering
the guest's files and the componentize-py version. A build takes ~20 s of CPU, runs in a child process at
lower priority, and holds a file lock so that engines (or workers) sharing the cache build it only once.
The engine then compiles the wasm like any skill (`runtime.compiler`), so restarts load it in milliseconds.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TextIO

log = logging.getLogger("skill_engine.sandbox")

GUEST = Path(__file__).resolve().parent / "guest"
WORLD = "code-sandbox"
APP = "sandbox_guest"
BUILD_TIMEOUT = 900.0


class SandboxBuildError(Exception):
    """The sandbox component could not be built; `execute_python` reports this message."""


def guest_digest() -> str:
    digest = hashlib.sha256(f"componentize-py={version('componentize-py')};world={WORLD}".encode())
    for path in sorted(GUEST.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".wit"):
            digest.update(str(path.relative_to(GUEST)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:20]


def componentize_py() -> str:
    """The componentize-py installed next to this interpreter (the engine's venv), else on PATH."""
    beside = Path(sys.executable).parent / "componentize-py"
    if beside.exists():
        return str(beside)
    found = shutil.which("componentize-py")
    if found is None:
        raise SandboxBuildError("componentize-py is not installed: the code sandbox cannot be built")
    return found


async def build(directory: Path) -> Path:
    """The sandbox wasm in `directory`, built first if missing (one build at a time across processes)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / f"sandbox-{guest_digest()}.wasm"
    if target.exists():
        return target
    lock_file = await asyncio.to_thread(_lock, directory / "sandbox.lock")
    try:
        if target.exists():  # another process built it while we waited
            return target
        await _componentize(target)
        return target
    finally:
        lock_file.close()


def _lock(path: Path) -> TextIO:
    handle = path.open("w")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


async def _componentize(target: Path) -> None:
    log.info("building the code sandbox with componentize-py (once per version, ~20 s)")
    workdir = Path(tempfile.mkdtemp(dir=target.parent, prefix="sandbox-build-"))
    output = workdir / "sandbox.wasm"
    command = [componentize_py(), "-d", str(GUEST / "wit"), "-w", WORLD, "componentize"]
    command += ["-p", str(GUEST), APP, "-o", str(output)]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=workdir,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=lambda: os.nice(10),
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), BUILD_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError):
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0 or not output.exists():
            text = out.decode("utf-8", "replace").strip()[-2000:]
            raise SandboxBuildError(f"building the code sandbox failed: {text}")
        os.replace(output, target)
        log.info("built the code sandbox: %s", target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
