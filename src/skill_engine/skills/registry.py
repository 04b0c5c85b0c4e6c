"""Where skill bytes come from: a directory of `<name>.wasm` files or an OCI registry (skills/oci.py)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from skill_engine.skills.names import InvalidName, check_name

SETTLE_SECONDS = 0.2
"""How long a skill file must be unmodified before it is read (a copy in progress keeps modifying it)."""
SETTLE_LIMIT_SECONDS = 5.0
"""How long a load waits for a file that keeps changing before it fails."""


@dataclass(frozen=True)
class Pulled:
    """A component's bytes and the digest of the version they are."""

    wasm: bytes
    digest: str


class Registry(Protocol):
    async def load(self, name: str, tag: str) -> Pulled | None:
        """The component, or None when the registry has no such skill. Other failures raise RegistryError."""

    async def digest(self, name: str, tag: str) -> str | None:
        """Identifies the current version of `name:tag`; a change evicts the cached component."""


class RegistryError(Exception):
    """The registry could not answer (network, auth, bad artifact); the text goes into the 503 load error."""


class DirectoryRegistry:
    """`<dir>/<name>.wasm`; the digest is the file's mtime in milliseconds, as PhariaEngine uses."""

    def __init__(self, directory: Path, max_size: int = 1024**3) -> None:
        self.directory = directory
        self.max_size = max_size

    def __repr__(self) -> str:
        return f"DirectoryRegistry({str(self.directory)!r})"

    def _file(self, name: str) -> Path:
        """`<directory>/<name>.wasm`, only for a valid skill name (never a path: no `/`, no `..`)."""
        try:
            check_name(name)
        except InvalidName as e:
            raise RegistryError(str(e)) from None
        return self.directory / f"{name}.wasm"

    def _load(self, name: str) -> Pulled | None:
        """The file's bytes once it is whole. A skill copied into the directory appears at its first byte:
        a file modified less than `SETTLE_SECONDS` ago is read once it is that old, and a read during which
        the file changed (mtime, size) is repeated; one still changing after `SETTLE_LIMIT_SECONDS` fails
        the load. Without this a request could load half a copy and fail as an invalid component."""
        file = self._file(name)
        deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
        try:
            while True:
                before = file.stat()  # before reading: a rewrite after it shows as a change later
                age = time.time() - before.st_mtime
                settled = not 0 <= age < SETTLE_SECONDS
                if settled:
                    with file.open("rb") as f:
                        wasm = f.read(self.max_size + 1)
                    after = file.stat()
                    whole = len(wasm) == after.st_size or len(wasm) > self.max_size
                    if whole and (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size):
                        break
                if time.monotonic() >= deadline:
                    raise RegistryError(
                        f"{file} kept changing for {SETTLE_LIMIT_SECONDS:g} s; write it elsewhere and"
                        " rename it into the directory"
                    )
                time.sleep(SETTLE_SECONDS - age if not settled else SETTLE_SECONDS / 4)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as e:
            raise RegistryError(f"Unable to read {file}: {e}") from None
        if len(wasm) > self.max_size:
            raise RegistryError(f"{file} is larger than the limit of {self.max_size} bytes (MAX_SKILL_SIZE)")
        return Pulled(wasm, _digest_of(before))

    async def load(self, name: str, tag: str) -> Pulled | None:
        return await asyncio.to_thread(self._load, name)

    def _digest(self, name: str) -> str | None:
        try:
            return _mtime_ms(self._file(name))
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def digest(self, name: str, tag: str) -> str | None:
        return await asyncio.to_thread(self._digest, name)

    def names(self) -> dict[str, str]:
        """Every `<name>.wasm` file with its digest. Other files are not skills."""
        found: dict[str, str] = {}
        for entry in self.directory.iterdir():
            if entry.suffix != ".wasm" or not entry.is_file():
                continue
            try:
                found[entry.stem] = _mtime_ms(entry)
            except FileNotFoundError:
                continue
        return found


def _mtime_ms(path: Path) -> str:
    return _digest_of(path.stat())


def _digest_of(stat: os.stat_result) -> str:
    """A file's digest: its mtime in milliseconds."""
    return str(stat.st_mtime_ns // 1_000_000)
