"""Keeps each namespace's skill list current by re-reading its source every update interval."""

from __future__ import annotations

import asyncio
import logging
import time

from skill_engine.config import NamespaceConfig
from skill_engine.skills.registry import DirectoryRegistry
from skill_engine.skills.store import SkillDescription, SkillStore

log = logging.getLogger("skill_engine.namespaces")


class NamespaceWatcher:
    def __init__(self, namespaces: dict[str, NamespaceConfig], store: SkillStore, interval: float) -> None:
        self.namespaces = namespaces
        self.store = store
        self.interval = interval

    async def run_pass(self) -> None:
        await asyncio.gather(*(self._refresh(name, config) for name, config in self.namespaces.items()))

    async def _refresh(self, namespace: str, config: NamespaceConfig) -> None:
        if config.directory is None:
            self.store.mark_misconfigured(
                namespace,
                "This namespace shape (config-url or in-place skills) is not supported by this engine yet; "
                "use `directory`.",
            )
            return
        registry = DirectoryRegistry(config.directory)
        try:
            found = await asyncio.to_thread(registry.names)
        except (FileNotFoundError, NotADirectoryError):
            self.store.mark_misconfigured(
                namespace, f"The directory to watch '\"{config.directory}\"' is not a directory."
            )
            return
        except OSError as e:
            log.warning("could not list namespace %s (keeping the last good state): %s", namespace, e)
            return
        self.store.set_namespace(
            namespace,
            {
                name: SkillDescription(namespace, name, registry, "latest", digest)
                for name, digest in found.items()
            },
        )

    async def run_forever(self) -> None:
        """Passes start `interval` apart (from the start of the previous one)."""
        while True:
            started = time.monotonic()
            try:
                await self.run_pass()
            except Exception:
                log.exception("namespace pass failed")
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.05))
