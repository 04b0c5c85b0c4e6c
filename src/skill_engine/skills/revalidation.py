"""Digest re-validation: a background pass asks each cached skill's registry for its current digest every
update interval, so re-pointing a tag is noticed without touching the namespace; a new digest evicts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from skill_engine.skills.cache import CachedSkill, ComponentCache
from skill_engine.skills.catalogue import Catalogue, SkillDescription
from skill_engine.skills.registry import RegistryError

log = logging.getLogger("skill_engine.store")


class DigestRevalidator:
    def __init__(
        self, cache: ComponentCache, catalogue: Catalogue, moved: Callable[[SkillDescription], None]
    ) -> None:
        """`moved` is called for a skill evicted because its tag now names another digest."""
        self.cache = cache
        self.catalogue = catalogue
        self._moved = moved
        self._cache_filled = asyncio.Event()

    def cached(self) -> None:
        """A skill entered the cache: wakes the pass if it was waiting for one."""
        self._cache_filled.set()

    async def run_forever(self, interval: float) -> None:
        """Checks the cached skill validated longest ago, `interval` after that; evicts on change."""
        while True:
            oldest = self.cache.oldest_validated()
            if oldest is None:
                self._cache_filled.clear()
                await self._cache_filled.wait()
                continue
            path, entry = oldest
            wait = entry.validated_at + interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, interval))
                continue
            await self.revalidate(path, entry)

    async def revalidate(self, path: str, entry: CachedSkill) -> None:
        namespace, _, name = path.partition("/")
        description = self.catalogue.get(namespace, name)
        if not isinstance(description, SkillDescription):
            self.cache.remove(path)
            return
        try:
            current = await description.registry.digest(description.name, description.tag)
        except RegistryError as e:
            log.warning("could not re-validate the digest of %s (keeping it): %s", path, e)
        except Exception:
            log.exception("re-validating the digest of %s failed", path)
        else:
            if current != entry.digest and self.cache.peek(path) is entry:
                self.cache.remove(path)
                log.info(
                    "evicted %s from the cache: %s:%s now has digest %s (was %s)",
                    path,
                    description.name,
                    description.tag,
                    current,
                    entry.digest,
                )
                if current is not None:
                    self._moved(description)
                return
        entry.validated_at = time.monotonic()
