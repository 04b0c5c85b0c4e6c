"""Loaded components kept in memory, keyed by skill path (`namespace/name`), within a byte budget.

Each entry weighs the size of the component as downloaded (engine-spec §1.4: a Python skill is ~50 MB in the
registry and about twice that in memory, so the budget is a quarter of the memory the engine may use). The
least recently used entries leave first. An entry larger than the whole budget is not kept at all.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from skill_engine.runtime.runner import LoadedSkill

log = logging.getLogger("skill_engine.cache")


@dataclass
class CachedSkill:
    skill: LoadedSkill
    digest: str | None
    size: int = 0
    validated_at: float = field(default_factory=time.monotonic)
    """When the digest was last compared with the registry's (monotonic seconds)."""


class ComponentCache:
    def __init__(self, capacity: int = 1024**3) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, CachedSkill] = OrderedDict()
        self.weight = 0

    def get(self, path: str) -> CachedSkill | None:
        entry = self._entries.get(path)
        if entry is not None:
            self._entries.move_to_end(path)
        return entry

    def peek(self, path: str) -> CachedSkill | None:
        """Like `get` without counting as a use."""
        return self._entries.get(path)

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
        self.weight += entry.size
        while self.weight > self.capacity:
            evicted, old = self._entries.popitem(last=False)
            self.weight -= old.size
            log.info(
                "evicted %s from the skill cache: least recently used (budget %d bytes)",
                evicted,
                self.capacity,
            )

    def remove(self, path: str) -> bool:
        entry = self._entries.pop(path, None)
        if entry is None:
            return False
        self.weight -= entry.size
        return True

    def paths(self) -> list[str]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def oldest_validated(self) -> tuple[str, CachedSkill] | None:
        if not self._entries:
            return None
        return min(self._entries.items(), key=lambda item: item[1].validated_at)
