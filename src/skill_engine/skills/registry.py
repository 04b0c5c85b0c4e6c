"""Where skill bytes come from: a directory of `<name>.wasm` files or an OCI registry (skills/oci.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


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

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __repr__(self) -> str:
        return f"DirectoryRegistry({str(self.directory)!r})"

    def _file(self, name: str) -> Path:
        return self.directory / f"{name}.wasm"

    def _load(self, name: str) -> Pulled | None:
        file = self._file(name)
        try:
            digest = _mtime_ms(file)  # before reading: a concurrent rewrite then shows as a change later
            return Pulled(file.read_bytes(), digest)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as e:
            raise RegistryError(f"Unable to read {file}: {e}") from None

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
    return str(path.stat().st_mtime_ns // 1_000_000)
