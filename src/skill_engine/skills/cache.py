"""Loaded components kept in memory, keyed by skill path (`namespace/name`), within a byte budget.

Each entry weighs the size of the component as downloaded (engine-spec §1.4: a Python skill is ~50 MB in the
registry and about twice that in memory, so the budget is a quarter of the memory the engine may use). The
least recently used entries leave first (cachetools' `LRUCache` sized by `getsizeof`). An entry larger than
the whole budget is not kept at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from cachetools import Cache, LRUCache

from skill_engine.runtime.runner import LoadedSkill

log = logging.getLogger("skill_engine.cache")


@dataclass
class CachedSkill:
    skill: LoadedSkill
    digest: str | None
    size: int = 0
    validated_at: float = field(default_factory=time.monotonic)
    """When the digest was last compared with the registry's (monotonic seconds)."""


def _size(entry: CachedSkill) -> int:
    return entry.size


class _Budget(LRUCache[str, CachedSkill]):
    def popitem(self) -> tuple[str, CachedSkill]:
        path, entry = super().popitem()
        log.info("evicted %s from the skill cache: least recently used (budget %d bytes)", path, self.maxsize)
        return path, entry


class ComponentCache:
    def __init__(self, capacity: int = 1024**3) -> None:
        self.capacity = capacity
        self._entries = _Budget(maxsize=capacity, getsizeof=_size)

    @property
    def weight(self) -> int:
        return int(self._entries.currsize)

    def get(self, path: str) -> CachedSkill | None:
        return self._entries.get(path)

    def peek(self, path: str) -> CachedSkill | None:
        """Like `get` without counting as a use (cachetools' base lookup leaves the LRU order alone)."""
        if path not in self._entries:
            return None
        entry: CachedSkill = Cache.__getitem__(self._entries, path)
        return entry

    def put(self, path: str, entry: CachedSkill) -> None:
        self.remove(path)
        if entry.size > self.capacity:
            log.warning(
                "%s (%d bytes) is larger than the whole skill cache (%d bytes): not cached",
                path,
                entry.size,
                self.capacity,
            )
            return
        self._entries[path] = entry

    def remove(self, path: str) -> bool:
        return self._entries.pop(path, None) is not None

    def paths(self) -> list[str]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def oldest_validated(self) -> tuple[str, CachedSkill] | None:
        entries = [(path, self.peek(path)) for path in self.paths()]
        known = [(path, entry) for path, entry in entries if entry is not None]
        if not known:
            return None
        return min(known, key=lambda item: item[1].validated_at)
