"""The one place that turns a skill path into a runnable component, composed of four collaborators:

- `Catalogue` (skills/catalogue.py): what exists, as the watcher reports it, with refused entries and
  namespace errors.
- `SkillLoader` (skills/loader.py): concurrent first calls of one skill share a single load (download,
  compile, load) and its outcome; loaded components stay in a byte-budgeted LRU cache (skills/cache.py).
- `Precompiler` (skills/precompile.py): precompile on deploy (beyond PhariaEngine), so a new or changed
  skill's first request only loads the artifact.
- `DigestRevalidator` (skills/revalidation.py): re-validates each cached skill's digest with its registry
  every update interval, so re-pointing a tag is noticed without touching the namespace.

The store itself keeps them in step: a changed description (tag, file mtime) or a removal evicts at once and
precompiles the new one.
"""

from __future__ import annotations

import logging
import time

from skill_engine.governance import audit
from skill_engine.runtime.compiler import Compiler
from skill_engine.runtime.runner import LoadedSkill, WasmRuntime
from skill_engine.skills.builtin import BuiltinSkill, builtin
from skill_engine.skills.cache import ComponentCache
from skill_engine.skills.catalogue import Catalogue, ConfiguredChat, KnownSkill, SkillDescription
from skill_engine.skills.chat import chat_skill
from skill_engine.skills.loader import SkillLoader
from skill_engine.skills.precompile import Precompiler
from skill_engine.skills.revalidation import DigestRevalidator
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine.store")


class SkillStore:
    def __init__(
        self,
        runtime: WasmRuntime,
        compiler: Compiler,
        telemetry: Telemetry | None = None,
        cache_bytes: int = 1024**3,
        precompile: bool = False,
    ) -> None:
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.runtime = runtime
        self.compiler = compiler
        self.precompile = precompile
        self.cache = ComponentCache(cache_bytes)
        self.catalogue = Catalogue(self.telemetry)
        self.precompiler = Precompiler(compiler, self.telemetry)
        self.revalidator = DigestRevalidator(self.cache, self.catalogue, self._precompile_if_enabled)
        self.loader = SkillLoader(
            runtime, self.catalogue, self.cache, self.precompiler, self.telemetry, self.revalidator.cached
        )

    # -- namespace contents (from the watcher) -------------------------------------------------------

    def set_namespace(
        self, namespace: str, skills: dict[str, KnownSkill], refused: dict[str, str] | None = None
    ) -> None:
        """Replaces a namespace's skills; changed or removed ones leave the cache, new ones precompile.

        `refused`: entries not served because of their name or tag (skills/names.py), name → reason. They
        are the namespace's error state: logged when they appear, counted in
        `kernel_namespace_refused_skills`, and a request naming one gets the reason as its 500."""
        previous = self.catalogue.set_namespace(namespace, skills, refused or {})
        for name, old in previous.items():
            if skills.get(name) != old:
                self.precompiler.forget(old.path)
                if self.cache.remove(old.path):
                    log.info("evicted %s from the cache: it changed or was removed", old.path)
        for name in previous.keys() - skills.keys():
            log.info("skill %s/%s is no longer served", namespace, name)
        for name, skill in skills.items():
            if previous.get(name) == skill:
                continue
            if name not in previous:
                log.info("skill %s/%s is now served", namespace, name)
            else:
                log.info("skill %s/%s changed", namespace, name)
            if isinstance(skill, SkillDescription):
                self._precompile_if_enabled(skill)

    def mark_misconfigured(self, namespace: str, error: str) -> None:
        """An unrecoverable namespace error: its skills are removed until a later pass succeeds."""
        if self.catalogue.namespace_error(namespace) != error:
            log.error("namespace %s is misconfigured: %s", namespace, error)
        self.set_namespace(namespace, {})
        self.catalogue.mark_misconfigured(namespace, error)

    def refused(self, namespace: str) -> dict[str, str]:
        """The namespace's entries refused for their name or tag (name → reason)."""
        return self.catalogue.refused(namespace)

    def refused_counts(self) -> dict[str, int]:
        return self.catalogue.refused_counts()

    def skill_paths(self, kind: str | None = None) -> list[str]:
        """Sorted by namespace, then name; `kind` is `chat` or `programmable` to filter."""
        return self.catalogue.skill_paths(kind)

    def namespace_error(self, namespace: str) -> str | None:
        """Why a namespace is misconfigured (its skills are not served), or None."""
        return self.catalogue.namespace_error(namespace)

    def known(self, namespace: str) -> dict[str, KnownSkill]:
        """The skills a namespace currently serves, by name (a copy)."""
        return self.catalogue.known(namespace)

    def compile_state(self, path: str) -> str:
        """`loaded` (in memory), `compiling`, `compiled` (on disk, to be loaded), `failed` or `not loaded`."""
        if self.cache.peek(path) is not None:
            return "loaded"
        return self.precompiler.state(path) or "not loaded"

    def precompiling(self) -> list[str]:
        return self.precompiler.precompiling()

    # -- the cache routes ---------------------------------------------------------------------------

    def cached_paths(self) -> list[str]:
        return self.cache.paths()

    def invalidate(self, namespace: str, name: str) -> bool:
        return self.cache.remove(f"{namespace}/{name}")

    # -- resolving ----------------------------------------------------------------------------------

    async def fetch(self, namespace: str, name: str) -> LoadedSkill | BuiltinSkill:
        started = time.perf_counter()
        try:
            skill = await self._fetch(namespace, name)
            cached = self.cache.peek(f"{namespace}/{name}")
            audit.ran(digest=cached.digest if cached is not None else None)
            return skill
        finally:
            # Label values only from configured skills: a caller naming a million random skills creates
            # no new series (its requests are not observed at all).
            if self.catalogue.get(namespace, name) is not None or builtin(namespace, name) is not None:
                elapsed = time.perf_counter() - started
                self.telemetry.metrics.fetch_duration.labels(namespace, name).observe(elapsed)

    async def _fetch(self, namespace: str, name: str) -> LoadedSkill | BuiltinSkill:
        cached = self.cache.get(f"{namespace}/{name}")
        if cached is not None:
            return cached.skill
        hard_coded = builtin(namespace, name)
        if hard_coded is not None:
            return hard_coded
        description = self.catalogue.resolve(namespace, name)
        if isinstance(description, ConfiguredChat):
            return chat_skill(description.entry)
        return await self.loader.load(description)

    # -- background work ----------------------------------------------------------------------------

    async def revalidate_forever(self, interval: float) -> None:
        """Checks the cached skill validated longest ago, `interval` after that; evicts on change."""
        await self.revalidator.run_forever(interval)

    def _precompile_if_enabled(self, description: SkillDescription) -> None:
        if self.precompile:
            self.precompiler.start(description)
