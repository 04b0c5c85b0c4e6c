"""What skills exist, and the one place that turns a skill path into a runnable component.

- Concurrent first calls of one skill share a single load (download, compile, load) and its outcome.
- Loaded components stay in a byte-budgeted LRU cache (skills/cache.py); a changed description (tag, file
  mtime) or a removal evicts them at once, and a background pass re-validates each cached skill's digest
  with its registry every update interval, so re-pointing a tag is noticed without touching the namespace.
- Precompile on deploy (beyond PhariaEngine): a new or changed skill is downloaded and compiled into the
  on-disk artifact cache in the background as soon as the watcher reports it, so its first request only
  loads the artifact. A request arriving while that runs waits for the same work instead of starting its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from skill_engine.errors import MisconfiguredNamespace, SkillLoadError, SkillNotFound
from skill_engine.governance import audit
from skill_engine.runtime.compiler import Compiler
from skill_engine.runtime.runner import LoadedSkill, WasmRuntime
from skill_engine.single_flight import SingleFlight
from skill_engine.skills.builtin import BuiltinSkill, builtin
from skill_engine.skills.cache import CachedSkill, ComponentCache
from skill_engine.skills.chat import chat_skill
from skill_engine.skills.description import ChatSkill
from skill_engine.skills.registry import Registry, RegistryError
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine.store")


@dataclass(frozen=True)
class SkillDescription:
    """A programmable skill: `name:tag` in `registry`; `digest` only when known up front (directories)."""

    namespace: str
    name: str
    registry: Registry
    tag: str = "latest"
    digest: str | None = None

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ConfiguredChat:
    namespace: str
    entry: ChatSkill

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.entry.name}"


KnownSkill = SkillDescription | ConfiguredChat


@dataclass(frozen=True)
class Prepared:
    """A skill downloaded and compiled to disk, not yet loaded into memory."""

    artifact: Path
    digest: str
    size: int
    pulled_at: float


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
        self._known: dict[str, dict[str, KnownSkill]] = {}
        self._errors: dict[str, str] = {}
        self._refused: dict[str, dict[str, str]] = {}
        self._loading: SingleFlight[str, LoadedSkill] = SingleFlight()
        self._preparing: dict[str, tuple[SkillDescription, asyncio.Task[Prepared]]] = {}
        self._cache_filled = asyncio.Event()

    # -- namespace contents (from the watcher) -------------------------------------------------------

    def set_namespace(
        self, namespace: str, skills: dict[str, KnownSkill], refused: dict[str, str] | None = None
    ) -> None:
        """Replaces a namespace's skills; changed or removed ones leave the cache, new ones precompile.

        `refused`: entries not served because of their name or tag (skills/names.py), name → reason. They
        are the namespace's error state: logged when they appear, counted in
        `kernel_namespace_refused_skills`, and a request naming one gets the reason as its 500."""
        self._errors.pop(namespace, None)
        refused = refused or {}
        for name, reason in refused.items():
            if self._refused.get(namespace, {}).get(name) != reason:
                log.error("namespace %s: an entry was refused and is not served: %s", namespace, reason)
        if refused:
            self._refused[namespace] = dict(refused)
        else:
            self._refused.pop(namespace, None)
        self.telemetry.metrics.refused_skills.labels(namespace).set(len(refused))
        previous = self._known.get(namespace, {})
        self._known[namespace] = dict(skills)
        for name, old in previous.items():
            if skills.get(name) != old:
                self._preparing.pop(old.path, None)
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
            if self.precompile and isinstance(skill, SkillDescription):
                self._start_preparing(skill)

    def mark_misconfigured(self, namespace: str, error: str) -> None:
        """An unrecoverable namespace error: its skills are removed until a later pass succeeds."""
        if self._errors.get(namespace) != error:
            log.error("namespace %s is misconfigured: %s", namespace, error)
        self.set_namespace(namespace, {})
        self._errors[namespace] = error

    def refused(self, namespace: str) -> dict[str, str]:
        """The namespace's entries refused for their name or tag (name → reason)."""
        return dict(self._refused.get(namespace, {}))

    def refused_counts(self) -> dict[str, int]:
        return {namespace: len(entries) for namespace, entries in self._refused.items()}

    def skill_paths(self, kind: str | None = None) -> list[str]:
        """Sorted by namespace, then name (not by the joined string: `a-b/x` comes after `a/x`); `kind` is
        `chat` or `programmable` to filter."""
        return [
            f"{namespace}/{name}"
            for namespace, skills in sorted(self._known.items())
            for name, skill in sorted(skills.items())
            if kind is None or (kind == "chat") == isinstance(skill, ConfiguredChat)
        ]

    def namespace_error(self, namespace: str) -> str | None:
        """Why a namespace is misconfigured (its skills are not served), or None."""
        return self._errors.get(namespace)

    def known(self, namespace: str) -> dict[str, KnownSkill]:
        """The skills a namespace currently serves, by name (a copy)."""
        return dict(self._known.get(namespace, {}))

    def compile_state(self, path: str) -> str:
        """`loaded` (in memory), `compiling`, `compiled` (on disk, to be loaded), `failed` or `not loaded`."""
        if self.cache.peek(path) is not None:
            return "loaded"
        preparing = self._preparing.get(path)
        if preparing is None:
            return "not loaded"
        task = preparing[1]
        if not task.done():
            return "compiling"
        return "compiled" if not task.cancelled() and task.exception() is None else "failed"

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
            if name in self._known.get(namespace, {}) or builtin(namespace, name) is not None:
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
        reason = self._refused.get(namespace, {}).get(name)
        if reason is not None:
            raise MisconfiguredNamespace(namespace, reason)
        description = self._known.get(namespace, {}).get(name)
        if description is None:
            raise SkillNotFound()
        if isinstance(description, ConfiguredChat):
            return chat_skill(description.entry)
        return await self._loading.run(path, lambda: self._load(description))

    async def _load(self, description: SkillDescription) -> LoadedSkill:
        # Spans: load_skill → {download, compile} when this request does the work; a precompiled skill's
        # download and compile happened at deploy time, outside any request's trace.
        with self.telemetry.span("load_skill", {"skill": description.path, "tag": description.tag}):
            prepared = await self._prepared(description)
            try:
                skill = await asyncio.to_thread(self.runtime.load, str(prepared.artifact))
            except SkillLoadError:
                raise
            except Exception as e:
                raise SkillLoadError(f"Failed to pre-instantiate the component: {e}") from e
        # Only cache if the description did not change while we were loading.
        if self._known.get(description.namespace, {}).get(description.name) == description:
            entry = CachedSkill(skill, prepared.digest, prepared.size, prepared.pulled_at)
            self.cache.put(description.path, entry)
            self._cache_filled.set()
        return skill

    async def _prepared(self, description: SkillDescription) -> Prepared:
        """The precompiled artifact if ready or on its way for this exact description, else a fresh one."""
        preparing = self._preparing.get(description.path)
        if preparing is not None and preparing[0] == description:
            task = preparing[1]
            if not task.done():
                log.info("%s is being precompiled: waiting for it", description.path)
                return await asyncio.shield(task)
            self._preparing.pop(description.path, None)
            if not task.cancelled() and task.exception() is None and task.result().artifact.is_file():
                return task.result()
        return await self._prepare(description)

    async def _prepare(self, description: SkillDescription) -> Prepared:
        registry, name, tag = description.registry, description.name, description.tag
        span = self.telemetry.span
        with span("download", {"skill": description.path, "tag": tag}):
            try:
                pulled = await registry.load(name, tag)
            except RegistryError as e:
                raise SkillLoadError(str(e)) from None
        if pulled is None:
            raise SkillLoadError(f"Skill {description.path}:{tag} not found in registry.")
        pulled_at = time.monotonic()
        with span("compile", {"skill": description.path, "size": len(pulled.wasm)}):
            artifact = await self.compiler.compiled(pulled.wasm, description.path)  # label: metrics
        return Prepared(artifact, pulled.digest, len(pulled.wasm), pulled_at)

    # -- precompile on deploy -----------------------------------------------------------------------

    def _start_preparing(self, description: SkillDescription) -> None:
        task = asyncio.ensure_future(self._precompile(description))
        task.add_done_callback(_retrieve)
        self._preparing[description.path] = (description, task)

    async def _precompile(self, description: SkillDescription) -> Prepared:
        label = f"{description.path}:{description.tag}"
        started = time.monotonic()
        log.info("precompiling %s", label)
        try:
            prepared = await self._prepare(description)
        except Exception as e:
            message = e.message if isinstance(e, SkillLoadError) else f"{type(e).__name__}: {e}"
            log.error("precompiling %s failed after %.1f s: %s", label, time.monotonic() - started, message)
            raise
        log.info(
            "precompiled %s in %.1f s: its first request only loads it", label, time.monotonic() - started
        )
        return prepared

    def precompiling(self) -> list[str]:
        return sorted(path for path, (_, task) in self._preparing.items() if not task.done())

    # -- digest re-validation -----------------------------------------------------------------------

    async def revalidate_forever(self, interval: float) -> None:
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
            await self._revalidate(path, entry)

    async def _revalidate(self, path: str, entry: CachedSkill) -> None:
        namespace, _, name = path.partition("/")
        description = self._known.get(namespace, {}).get(name)
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
                if self.precompile and current is not None:
                    self._start_preparing(description)
                return
        entry.validated_at = time.monotonic()


def _retrieve(task: asyncio.Task[Prepared]) -> None:
    """A failed precompile is logged; a later request tries again, so nobody has to see the exception."""
    if not task.cancelled():
        task.exception()
