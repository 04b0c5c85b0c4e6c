"""Which MCP servers each namespace lists, their tools (refreshed in the background), and the calls."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from skill_engine.csi.mcp.connection import Kind, McpConnection, McpSettings
from skill_engine.csi.mcp.failures import McpFailure
from skill_engine.csi.mcp.results import arguments_of, could_not_execute, tool_result
from skill_engine.csi.types import InvokeRequest, Tool, ToolResult

log = logging.getLogger("skill_engine.mcp")

FAILED_LISTING_RETRY = 5.0
"""Seconds after which a server whose listing failed is asked again (at most the refresh interval)."""


@dataclass
class _Listing:
    tools: list[Tool] = field(default_factory=list)
    listed_at: float | None = None  # last successful listing
    attempted_at: float | None = None
    ok: bool = False
    error: str | None = None  # the last failure, logged once until it changes


class McpServers:
    """MCP servers per namespace, their discovered tools, and the sessions to reach them.

    Tool lists are fetched when a server is added and every `refresh_interval` after that; a failed
    listing keeps the previous list (initially empty) and is retried sooner. A server shared by
    several namespaces is listed once and has one session.
    """

    def __init__(self, settings: McpSettings | None = None) -> None:
        self.settings = settings or McpSettings()
        self._servers: dict[str, list[str]] = {}
        self._forward: dict[str, frozenset[str]] = {}
        self._listings: dict[str, _Listing] = {}
        self._connections: dict[str, McpConnection] = {}
        self._token_connections: OrderedDict[tuple[str, str], McpConnection] = OrderedDict()
        self._kinds: dict[str, Kind] = {}
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._closing: set[asyncio.Task[None]] = set()
        # The MCP transports' HTTP client logs every request at INFO: one line per server and refresh.
        transport_log = logging.getLogger("httpx2")
        if transport_log.level == logging.NOTSET:
            transport_log.setLevel(logging.WARNING)

    # -- configuration ------------------------------------------------------------------------------

    def set_servers(self, namespace: str, urls: Sequence[str], forward_token: Iterable[str] = ()) -> None:
        """The namespace's servers, in priority order (the first server wins a tool-name clash)."""
        unique = list(dict.fromkeys(urls))
        forward = frozenset(forward_token)
        for url in forward - set(unique):
            log.warning(
                "namespace %s forwards tokens to %s, which is not one of its MCP servers", namespace, url
            )
        before = self._all_urls()
        self._servers[namespace] = unique
        self._forward[namespace] = forward & set(unique)
        self._reconcile(before)

    def remove_namespace(self, namespace: str) -> None:
        before = self._all_urls()
        self._servers.pop(namespace, None)
        self._forward.pop(namespace, None)
        self._reconcile(before)

    def knows(self, namespace: str) -> bool:
        return namespace in self._servers

    def servers(self, namespace: str) -> list[str]:
        return sorted(self._servers.get(namespace, []))

    def _all_urls(self) -> set[str]:
        return {url for urls in self._servers.values() for url in urls}

    def _reconcile(self, before: set[str]) -> None:
        after = self._all_urls()
        for url in after - before:
            self._listings[url] = _Listing()
            log.info("MCP server %s added", url)
        for url in before - after:
            log.info("MCP server %s removed", url)
            self._listings.pop(url, None)
            task = self._in_flight.pop(url, None)
            if task is not None:
                task.cancel()
            closing = [self._connections.pop(url)] if url in self._connections else []
            closing += [self._token_connections.pop(k) for k in list(self._token_connections) if k[0] == url]
            for connection in closing:
                self._close_later(connection)
        if after - before:
            self._wake.set()

    def _close_later(self, connection: McpConnection) -> None:
        try:
            task = asyncio.get_running_loop().create_task(connection.close())
        except RuntimeError:
            return  # no loop yet: nothing was ever opened
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- discovery ----------------------------------------------------------------------------------

    def _connection(self, url: str, token: str | None = None) -> McpConnection:
        if token is None:
            connection = self._connections.get(url)
            if connection is None:
                connection = self._connections[url] = McpConnection(url, None, self.settings, self._kinds)
            return connection
        key = (url, token)
        connection = self._token_connections.get(key)
        if connection is None:
            connection = McpConnection(url, token, self.settings, self._kinds)
            self._token_connections[key] = connection
            while len(self._token_connections) > self.settings.max_token_sessions:
                _, oldest = self._token_connections.popitem(last=False)
                self._close_later(oldest)
        self._token_connections.move_to_end(key)
        return connection

    async def refresh(self, url: str) -> None:
        """Lists one server's tools now; a failure keeps the previous list."""
        listing = self._listings.get(url)
        if listing is None:
            return
        listing.attempted_at = time.monotonic()
        try:
            tools = await self._connection(url).list_tools()
        except McpFailure as e:
            listing.ok = False
            level = logging.DEBUG if listing.error == str(e) else logging.WARNING
            listing.error = str(e)
            kept = len(listing.tools)
            log.log(level, "listing the tools of MCP server %s failed (keeping %d): %s", url, kept, e)
            return
        if self._listings.get(url) is listing:
            changed = [t.name for t in tools] != [t.name for t in listing.tools]
            listing.tools, listing.listed_at, listing.ok, listing.error = tools, time.monotonic(), True, None
            if changed:
                log.info("MCP server %s offers %s", url, ", ".join(t.name for t in tools) or "no tools")

    def _due(self, now: float) -> tuple[list[str], float]:
        due: list[str] = []
        next_at = now + self.settings.refresh_interval
        for url, listing in self._listings.items():
            if url in self._in_flight:
                continue
            if listing.attempted_at is None:
                due.append(url)
                continue
            wait = self.settings.refresh_interval
            if not listing.ok:
                wait = min(wait, FAILED_LISTING_RETRY)
            at = listing.attempted_at + wait
            if at <= now:
                due.append(url)
            else:
                next_at = min(next_at, at)
        return due, next_at

    async def refresh_due(self) -> float:
        """Starts listings that are due (without waiting for slow servers); returns when the next is due."""
        now = time.monotonic()
        due, next_at = self._due(now)
        for url in due:
            task = asyncio.create_task(self.refresh(url), name=f"mcp-list {url}")
            self._in_flight[url] = task
            task.add_done_callback(self._forget_listing(url))
        self._expire_token_sessions(now)
        return next_at

    async def first_listing(self, wait: float) -> None:
        """Starts listing every server and waits up to `wait` seconds for the answers (start-up)."""
        await self.refresh_due()
        pending = list(self._in_flight.values())
        if pending:
            await asyncio.wait(pending, timeout=wait)

    def _forget_listing(self, url: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(task: asyncio.Task[None]) -> None:
            if self._in_flight.get(url) is task:
                del self._in_flight[url]

        return forget

    def _expire_token_sessions(self, now: float) -> None:
        for key, connection in list(self._token_connections.items()):
            if now - connection.last_used > self.settings.token_session_idle:
                del self._token_connections[key]
                self._close_later(connection)

    async def run_forever(self) -> None:
        while True:
            try:
                next_at = await self.refresh_due()
            except Exception:
                log.exception("MCP refresh pass failed")
                next_at = time.monotonic() + FAILED_LISTING_RETRY
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(next_at - time.monotonic(), 0.05))

    # -- use ----------------------------------------------------------------------------------------

    def tools(self, namespace: str) -> dict[str, tuple[str, Tool]]:
        """Tool name → (server URL, tool) for the namespace; the first listed server wins a clash."""
        found: dict[str, tuple[str, Tool]] = {}
        for url in self._servers.get(namespace, []):
            listing = self._listings.get(url)
            for tool in listing.tools if listing else []:
                found.setdefault(tool.name, (url, tool))
        return found

    async def caller_tools(self, namespace: str, token: str | None) -> dict[str, tuple[str, Tool]]:
        """Like `tools`, but a server marked for token forwarding whose tools could never be listed
        without credentials is listed with the caller's token (cached per token for the refresh interval).
        """
        forward = self._forward.get(namespace, frozenset())
        urls = self._servers.get(namespace, [])
        needs_token = [
            url
            for url in urls
            if token and url in forward and (listing := self._listings.get(url)) and listing.listed_at is None
        ]
        if not needs_token or token is None:
            return self.tools(namespace)
        lists = await asyncio.gather(*(self._token_listing(u, token) for u in needs_token))
        listed = dict(zip(needs_token, lists, strict=True))
        found: dict[str, tuple[str, Tool]] = {}
        for url in urls:
            listing = self._listings.get(url)
            for tool in listed.get(url, listing.tools if listing else []):
                found.setdefault(tool.name, (url, tool))
        return found

    async def _token_listing(self, url: str, token: str) -> list[Tool]:
        connection = self._connection(url, token)
        if (
            connection.tools is not None
            and time.monotonic() - connection.listed_at < self.settings.refresh_interval
        ):
            return connection.tools
        try:
            connection.tools = await connection.list_tools()
        except McpFailure as e:
            log.warning("listing the tools of MCP server %s with the caller's token failed: %s", url, e)
            return connection.tools or []
        connection.listed_at = time.monotonic()
        return connection.tools

    async def invoke(self, namespace: str, url: str, request: InvokeRequest, token: str | None) -> ToolResult:
        forward = token if url in self._forward.get(namespace, frozenset()) else None
        try:
            arguments = arguments_of(request)
            result = await self._connection(url, forward).call_tool(request.name, arguments)
        except McpFailure as e:
            log.info("MCP tool %s on %s failed: %s", request.name, url, e)
            return could_not_execute(e)
        return tool_result(result)

    async def aclose(self) -> None:
        for task in list(self._in_flight.values()):
            task.cancel()
        connections = list(self._connections.values()) + list(self._token_connections.values())
        self._connections.clear()
        self._token_connections.clear()
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
        await asyncio.gather(*self._closing, return_exceptions=True)
