"""One load per skill: concurrent first calls of a skill share a single download, compile and load, and
its outcome; a loaded component goes into the cache unless its description changed meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from skill_engine.errors import SkillLoadError
from skill_engine.runtime.runner import LoadedSkill, WasmRuntime
from skill_engine.single_flight import SingleFlight
from skill_engine.skills.cache import CachedSkill, ComponentCache
from skill_engine.skills.catalogue import Catalogue, SkillDescription
from skill_engine.skills.precompile import Precompiler
from skill_engine.telemetry import Telemetry


class SkillLoader:
    def __init__(
        self,
        runtime: WasmRuntime,
        catalogue: Catalogue,
        cache: ComponentCache,
        precompiler: Precompiler,
        telemetry: Telemetry,
        cached: Callable[[], None],
    ) -> None:
        """`cached` is called each time a loaded skill entered the cache."""
        self.runtime = runtime
        self.catalogue = catalogue
        self.cache = cache
        self.precompiler = precompiler
        self.telemetry = telemetry
        self._cached = cached
        self._loading: SingleFlight[str, LoadedSkill] = SingleFlight()

    async def load(self, description: SkillDescription) -> LoadedSkill:
        return await self._loading.run(description.path, lambda: self._load(description))

    async def _load(self, description: SkillDescription) -> LoadedSkill:
        # Spans: load_skill → {download, compile} when this request does the work; a precompiled skill's
        # download and compile happened at deploy time, outside any request's trace.
        with self.telemetry.span("load_skill", {"skill": description.path, "tag": description.tag}):
            prepared = await self.precompiler.prepared(description)
            try:
                skill = await asyncio.to_thread(self.runtime.load, str(prepared.artifact))
            except SkillLoadError:
                raise
            except Exception as e:
                raise SkillLoadError(f"Failed to pre-instantiate the component: {e}") from e
        # Only cache if the description did not change while we were loading.
        if self.catalogue.is_current(description):
            entry = CachedSkill(skill, prepared.digest, prepared.size, prepared.pulled_at)
            self.cache.put(description.path, entry)
            self._cached()
        return skill
