"""Loaded components kept in memory, keyed by skill path (`namespace/name`).

An interface on purpose: the deployment issue gives it a byte budget, digests and LRU eviction.
"""

from __future__ import annotations

from dataclasses import dataclass

from skill_engine.runtime.runner import LoadedSkill


@dataclass(frozen=True)
class CachedSkill:
    skill: LoadedSkill
    digest: str | None


class ComponentCache:
    def __init__(self) -> None:
        self._entries: dict[str, CachedSkill] = {}

    def get(self, path: str) -> CachedSkill | None:
        return self._entries.get(path)

    def put(self, path: str, entry: CachedSkill) -> None:
        self._entries[path] = entry

    def remove(self, path: str) -> bool:
        return self._entries.pop(path, None) is not None

    def paths(self) -> list[str]:
        return list(self._entries)
