"""What skills exist, and the one place that turns a skill path into a runnable component.

Concurrent first calls of one skill share a single load; a changed digest or removal evicts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from skill_engine.errors import MisconfiguredNamespace, SkillLoadError, SkillNotFound
from skill_engine.runtime.compiler import Compiler
from skill_engine.runtime.runner import LoadedSkill, WasmRuntime
from skill_engine.skills.builtin import BuiltinSkill, builtin
from skill_engine.skills.cache import CachedSkill, ComponentCache
from skill_engine.skills.registry import Registry
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine.store")


@dataclass(frozen=True)
class SkillDescription:
    namespace: str
    name: str
    registry: Registry
    tag: str = "latest"
    digest: str | None = None

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.name}"


class SkillStore:
    def __init__(self, runtime: WasmRuntime, compiler: Compiler, telemetry: Telemetry | None = None) -> None:
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.runtime = runtime
        self.compiler = compiler
        self.cache = ComponentCache()
        self._known: dict[str, dict[str, SkillDescription]] = {}
        self._errors: dict[str, str] = {}
        self._loading: dict[str, asyncio.Future[LoadedSkill]] = {}

    # -- namespace contents (from the watcher) -------------------------------------------------------

    def set_namespace(self, namespace: str, skills: dict[str, SkillDescription]) -> None:
        """Replaces a namespace's skills; changed or removed ones leave the cache."""
        self._errors.pop(namespace, None)
        previous = self._known.get(namespace, {})
        for name, old in previous.items():
            new = skills.get(name)
            changed = new is None or new.tag != old.tag or new.digest != old.digest
            if changed and self.cache.remove(old.path):
                log.info("evicted %s from the cache: it changed or was removed", old.path)
        for name in skills.keys() - previous.keys():
            log.info("skill %s/%s is now served", namespace, name)
        for name in previous.keys() - skills.keys():
            log.info("skill %s/%s is no longer served", namespace, name)
        self._known[namespace] = dict(skills)

    def mark_misconfigured(self, namespace: str, error: str) -> None:
        """An unrecoverable namespace error: its skills are removed until a later pass succeeds."""
        if self._errors.get(namespace) != error:
            log.error("namespace %s is misconfigured: %s", namespace, error)
        self.set_namespace(namespace, {})
        self._errors[namespace] = error

    def skill_paths(self) -> list[str]:
        return sorted(f"{namespace}/{name}" for namespace, skills in self._known.items() for name in skills)

    # -- resolving ----------------------------------------------------------------------------------

    async def fetch(self, namespace: str, name: str) -> LoadedSkill | BuiltinSkill:
        started = time.perf_counter()
        try:
            return await self._fetch(namespace, name)
        finally:
            elapsed = time.perf_counter() - started
            self.telemetry.metrics.fetch_duration.labels(namespace, name).observe(elapsed)

    async def _fetch(self, namespace: str, name: str) -> LoadedSkill | BuiltinSkill:
        path = f"{namespace}/{name}"
        cached = self.cache.get(path)
        if cached is not None:
            return cached.skill
        hard_coded = builtin(namespace, name)
        if hard_coded is not None:
            return hard_coded
        if namespace in self._errors:
            raise MisconfiguredNamespace(namespace, self._errors[namespace])
        description = self._known.get(namespace, {}).get(name)
        if description is None:
            raise SkillNotFound()
        loading = self._loading.get(path)
        if loading is None:
            loading = asyncio.ensure_future(self._load(description))
            self._loading[path] = loading
            loading.add_done_callback(lambda _: self._loading.pop(path, None))
        return await asyncio.shield(loading)

    async def _load(self, description: SkillDescription) -> LoadedSkill:
        registry, name, tag = description.registry, description.name, description.tag
        span = self.telemetry.span
        with span("load_skill", {"skill": description.path, "tag": tag}):
            with span("download", {"skill": description.path, "tag": tag}):
                wasm = await asyncio.to_thread(registry.load, name, tag)
            if wasm is None:
                raise SkillLoadError(f"Skill {description.path}:{tag} not found in registry.")
            with span("compile", {"skill": description.path, "size": len(wasm)}):
                artifact = await self.compiler.compiled(wasm, description.path)
                try:
                    skill = await asyncio.to_thread(self.runtime.load, str(artifact))
                except SkillLoadError:
                    raise
                except Exception as e:
                    raise SkillLoadError(f"Failed to pre-instantiate the component: {e}") from e
        # Only cache if the description did not change while we were loading.
        if self._known.get(description.namespace, {}).get(name) == description:
            self.cache.put(description.path, CachedSkill(skill, description.digest))
        return skill
