"""Where skill bytes come from. The deployment issue adds an OCI registry beside the directory one."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Registry(Protocol):
    def load(self, name: str, tag: str) -> bytes | None:
        """The component's bytes, or None when the registry has no such skill."""

    def digest(self, name: str, tag: str) -> str | None:
        """Identifies the current version; a change evicts the cached component."""


class DirectoryRegistry:
    """`<dir>/<name>.wasm`; the digest is the file's mtime in milliseconds, as PhariaEngine uses."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _file(self, name: str) -> Path:
        return self.directory / f"{name}.wasm"

    def load(self, name: str, tag: str) -> bytes | None:
        try:
            return self._file(name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def digest(self, name: str, tag: str) -> str | None:
        try:
            return str(self._file(name).stat().st_mtime_ns // 1_000_000)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def names(self) -> dict[str, str]:
        """Every `<name>.wasm` file with its digest. Other files are not skills."""
        found: dict[str, str] = {}
        for entry in self.directory.iterdir():
            if entry.suffix != ".wasm" or not entry.is_file():
                continue
            try:
                found[entry.stem] = str(entry.stat().st_mtime_ns // 1_000_000)
            except FileNotFoundError:
                continue
        return found
