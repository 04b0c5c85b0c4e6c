"""Keeps each namespace's contents current by re-reading its description every update interval (§1.5).

Each pass loads every namespace's description concurrently, then applies the differences one namespace
after the other: skills go to the SkillStore (which evicts and precompiles), native tools and MCP servers to
whoever subscribed. A recoverable failure keeps the namespace's last good state; an unrecoverable one marks
it misconfigured and empties it until a later pass succeeds.

MCP servers: `watcher.mcp_servers[namespace]` is the tuple of server URLs (deduplicated, in the
description's order) of every configured namespace, updated at each pass; `watcher.on_mcp_servers(callback)`
registers `callback(namespace, urls)`, called at once for every namespace and then whenever a namespace's
list changes (the engine subscribes the MCP client this way). `on_native_tools` works the same way for
native tool names.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from skill_engine.config import NamespaceConfig
from skill_engine.skills.catalogue import ConfiguredChat, KnownSkill, SkillDescription
from skill_engine.skills.description import ChatSkill, NamespaceDescription
from skill_engine.skills.registry import Registry
from skill_engine.skills.sources import (
    Recoverable,
    Source,
    Unrecoverable,
    WatchedDirectory,
    config_client,
    make_registry,
    make_source,
)
from skill_engine.skills.store import SkillStore

log = logging.getLogger("skill_engine.namespaces")

Listener = Callable[[str, tuple[str, ...]], None]


class NamespaceWatcher:
    def __init__(
        self,
        namespaces: dict[str, NamespaceConfig],
        store: SkillStore,
        interval: float,
        max_skill_size: int = 512 * 1024**2,
    ) -> None:
        self.namespaces = namespaces
        self.store = store
        self.interval = interval
        self._client = config_client()
        self.sources: dict[str, Source] = {}
        self.registries: dict[str, Registry | None] = {}
        for name, config in namespaces.items():
            source = make_source(name, config, self._client, max_skill_size)
            self.sources[name] = source
            self.registries[name] = (
                source.registry
                if isinstance(source, WatchedDirectory)
                else make_registry(config, name, max_skill_size)
            )
        self.mcp_servers: dict[str, tuple[str, ...]] = {name: () for name in namespaces}
        self.native_tools: dict[str, tuple[str, ...]] = {name: () for name in namespaces}
        self._mcp_listeners: list[Listener] = []
        self._tool_listeners: list[Listener] = []
        self.updated_at: dict[str, float] = {}
        """Wall-clock time of each namespace's last successful (or unrecoverably failed) pass."""

    # -- subscriptions ------------------------------------------------------------------------------

    def on_mcp_servers(self, listener: Listener) -> None:
        self._mcp_listeners.append(listener)
        for namespace, servers in self.mcp_servers.items():
            listener(namespace, servers)

    def on_native_tools(self, listener: Listener) -> None:
        self._tool_listeners.append(listener)
        for namespace, tools in self.native_tools.items():
            listener(namespace, tools)

    # -- passes -------------------------------------------------------------------------------------

    async def run_pass(self) -> None:
        names = list(self.sources)
        outcomes = await asyncio.gather(*(self._describe(name) for name in names))
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, NamespaceDescription):
                self._apply(name, outcome)
                self.updated_at[name] = time.time()
            elif isinstance(outcome, Unrecoverable):
                self.store.mark_misconfigured(name, str(outcome))
                self._set_extras(name, (), ())
                self.updated_at[name] = time.time()

    async def _describe(self, namespace: str) -> NamespaceDescription | Unrecoverable | None:
        try:
            return await self.sources[namespace].describe()
        except Unrecoverable as e:
            return e
        except Recoverable as e:
            log.warning("namespace %s could not be loaded (keeping its last good state): %s", namespace, e)
        except Exception:
            log.exception("namespace %s could not be loaded (keeping its last good state)", namespace)
        return None

    def _apply(self, namespace: str, description: NamespaceDescription) -> None:
        registry = self.registries[namespace]
        skills: dict[str, KnownSkill] = {}
        for name, entry in description.skills_by_name.items():
            if isinstance(entry, ChatSkill):
                skills[name] = ConfiguredChat(namespace, entry)
            elif registry is not None:
                skills[name] = SkillDescription(namespace, name, registry, entry.tag, entry.digest)
        refused = {entry.name: entry.reason for entry in description.refused}
        self.store.set_namespace(namespace, skills, refused)
        # In the file's order (the MCP client gives earlier servers priority); the HTTP route sorts.
        self._set_extras(namespace, tuple(dict.fromkeys(description.mcp_servers)), description.native_tools)

    def _set_extras(self, namespace: str, servers: tuple[str, ...], tools: tuple[str, ...]) -> None:
        if self.mcp_servers.get(namespace) != servers:
            self.mcp_servers[namespace] = servers
            log.info("namespace %s: MCP servers %s", namespace, list(servers))
            for listener in self._mcp_listeners:
                listener(namespace, servers)
        if self.native_tools.get(namespace) != tools:
            self.native_tools[namespace] = tools
            for listener in self._tool_listeners:
                listener(namespace, tools)

    async def run_forever(self) -> None:
        """Passes start `interval` apart (from the start of the previous one)."""
        while True:
            started = time.monotonic()
            try:
                await self.run_pass()
            except Exception:
                log.exception("namespace pass failed")
            await asyncio.sleep(max(self.interval - (time.monotonic() - started), 0.05))

    async def aclose(self) -> None:
        await self._client.aclose()
        for registry in self.registries.values():
            close = getattr(registry, "aclose", None)
            if close is not None:
                await close()
