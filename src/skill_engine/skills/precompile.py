"""Where a skill's compiled artifact comes from: downloaded and compiled at deploy time in the background
(precompile on deploy, beyond PhariaEngine), or on demand for the request that needs it. A request arriving
while the background work runs waits for it instead of starting its own."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from skill_engine.errors import SkillLoadError
from skill_engine.runtime.compiler import Compiler
from skill_engine.skills.catalogue import SkillDescription
from skill_engine.skills.registry import RegistryError
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine.store")


@dataclass(frozen=True)
class Prepared:
    """A skill downloaded and compiled to disk, not yet loaded into memory."""

    artifact: Path
    digest: str
    size: int
    pulled_at: float


class Precompiler:
    def __init__(self, compiler: Compiler, telemetry: Telemetry) -> None:
        self.compiler = compiler
        self.telemetry = telemetry
        self._preparing: dict[str, tuple[SkillDescription, asyncio.Task[Prepared]]] = {}

    def start(self, description: SkillDescription) -> None:
        """Downloads and compiles `description` in the background."""
        task = asyncio.ensure_future(self._precompile(description))
        task.add_done_callback(_retrieve)
        self._preparing[description.path] = (description, task)

    def forget(self, path: str) -> None:
        """The skill changed or left: its background work no longer counts."""
        self._preparing.pop(path, None)

    def state(self, path: str) -> str | None:
        """`compiling`, `compiled`, `failed`, or None when nothing was precompiled for `path`."""
        preparing = self._preparing.get(path)
        if preparing is None:
            return None
        task = preparing[1]
        if not task.done():
            return "compiling"
        return "compiled" if not task.cancelled() and task.exception() is None else "failed"

    def precompiling(self) -> list[str]:
        return sorted(path for path, (_, task) in self._preparing.items() if not task.done())

    async def prepared(self, description: SkillDescription) -> Prepared:
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
        return await self.prepare(description)

    async def prepare(self, description: SkillDescription) -> Prepared:
        """Downloads the skill from its registry and compiles it into the on-disk artifact cache."""
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

    async def _precompile(self, description: SkillDescription) -> Prepared:
        label = f"{description.path}:{description.tag}"
        started = time.monotonic()
        log.info("precompiling %s", label)
        try:
            prepared = await self.prepare(description)
        except Exception as e:
            message = e.message if isinstance(e, SkillLoadError) else f"{type(e).__name__}: {e}"
            log.error("precompiling %s failed after %.1f s: %s", label, time.monotonic() - started, message)
            raise
        log.info(
            "precompiled %s in %.1f s: its first request only loads it", label, time.monotonic() - started
        )
        return prepared


def _retrieve(task: asyncio.Task[Prepared]) -> None:
    """A failed precompile is logged; a later request tries again, so nobody has to see the exception."""
    if not task.cancelled():
        task.exception()
