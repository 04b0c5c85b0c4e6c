"""MCP client: one session per server URL, shared by every namespace that lists the server (engine-spec §8).

Built on the official `mcp` package (`mcp.Client`), which negotiates the protocol version itself: it probes
`server/discover` for the stateless 2026 protocol and falls back to the `initialize` handshake
(2024-11-05 … 2025-11-25) for older servers.

Transports: Streamable HTTP (answers as JSON or as an SSE stream — the SDK reads both; this is what
PhariaEngine calls "JSON" and "SSE" servers) and the older HTTP+SSE transport (a GET event stream plus
POSTs to the endpoint it announces). Which one a URL speaks is found out like the MCP specification's
backwards-compatibility section suggests: try Streamable HTTP first (the legacy transport first when the
URL path ends in `/sse`), and fall back to the other one when the server rejects the first at HTTP level.
The answer is remembered per URL.

A session lives in a task of its own (anyio task groups must be left by the task that entered them).
Every call is bounded by `call_timeout`, every connect by `connect_timeout`. A session whose transport
broke (server restarted, connection refused, "Session not found" from a stateful server that lost its
sessions) is dropped; later calls reconnect. A failed `tools/list` is retried once on a new session. A
`tools/call` has side effects, so it is sent again only when it provably never ran: the connection
could not be opened, or the server answered that it does not know the session. Once the request may have
reached the server (connection lost while waiting, timeout), the caller gets the error instead.

Servers a namespace marks for token forwarding get a session per caller token, so the caller's bearer
token reaches them as `Authorization: Bearer <token>`; no other server ever sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, INVALID_REQUEST, CallToolResult, Implementation, TextContent

from skill_engine.csi.types import InvokeRequest, Tool, ToolOutput, ToolResult

log = logging.getLogger("skill_engine.mcp")

T = TypeVar("T")
Kind = Literal["streamable-http", "sse"]
CLIENT_INFO = Implementation(name="SkillEngine", version="0.1.0")
MAX_TOOL_PAGES = 100
FAILED_LISTING_RETRY = 5.0
"""Seconds after which a server whose listing failed is asked again (at most the refresh interval)."""


@dataclass(frozen=True)
class McpSettings:
    refresh_interval: float = 60.0
    call_timeout: float = 60.0
    connect_timeout: float = 10.0
    token_session_idle: float = 300.0
    """Sessions opened for one caller's token are closed after this long unused."""
    max_token_sessions: int = 64


class McpFailure(Exception):
    """The server could not be reached or answered outside the protocol; the text names the cause."""

    def __init__(self, message: str, retryable: bool = False, unsent: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        """The session is broken: drop it (and resend, for requests without side effects)."""
        self.unsent = unsent
        """The request certainly did not run on the server: safe to resend even a `tools/call`."""


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def describe(error: BaseException) -> str:
    """The innermost meaningful message of an error (task groups wrap transport errors in groups)."""
    leaves = [e for e in _leaves(error) if not isinstance(e, asyncio.CancelledError)] or _leaves(error)
    first = leaves[0]
    text = str(first) or type(first).__name__
    return text.splitlines()[0]


def _is_http_rejection(error: BaseException) -> bool:
    """The server answered, but not in this transport's language (e.g. 404/405/400 on the wrong URL)."""
    for leaf in _leaves(error):
        if isinstance(leaf, MCPError) and leaf.code != CONNECTION_CLOSED:
            return True
        if isinstance(leaf, httpx2.HTTPStatusError) and 400 <= leaf.response.status_code < 500:
            return True
    return False


def _lost_session(error: MCPError) -> bool:
    """Answers that mean "this session is gone": drop it and reconnect."""
    return error.code == CONNECTION_CLOSED or _unknown_session(error)


def _unknown_session(error: MCPError) -> bool:
    """The server refused the request because it does not know the session: the request did not run."""
    return error.code == INVALID_REQUEST and "session" in str(error).lower()


def _never_connected(error: BaseException | None) -> bool:
    """The failure is a connection that could not be opened, so no request went out on it."""
    if error is None:
        return False
    leaves = _leaves(error)
    unsent = (httpx2.ConnectError, httpx2.ConnectTimeout)
    return bool(leaves) and all(isinstance(leaf, unsent) for leaf in leaves)


@dataclass
class _Session:
    client: Client
    owner: asyncio.Task[None]
    closing: asyncio.Event
    kind: Kind
    opened: float = field(default_factory=time.monotonic)

    @property
    def alive(self) -> bool:
        return not self.owner.done() and not self.closing.is_set()

    async def close(self) -> None:
        self.closing.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.owner), 5)
        except (TimeoutError, asyncio.CancelledError):
            self.owner.cancel()
        except Exception:  # the owner keeps its failure; closing must not raise
            pass


class McpConnection:
    """Calls to one server URL (with one caller token, or none) over one reconnecting session."""

    def __init__(self, url: str, token: str | None, settings: McpSettings, kinds: dict[str, Kind]) -> None:
        self.url = url
        self.token = token
        self.settings = settings
        self._kinds = kinds  # shared by all connections: which transport each URL turned out to speak
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self.last_used = time.monotonic()
        # For sessions with a caller's token: that caller's view of the server's tools.
        self.tools: list[Tool] | None = None
        self.listed_at = 0.0

    def _transport_order(self) -> list[Kind]:
        known = self._kinds.get(self.url)
        if known is not None:
            return [known, "sse" if known == "streamable-http" else "streamable-http"]
        if urlparse(self.url).path.rstrip("/").endswith("/sse"):
            return ["sse", "streamable-http"]
        return ["streamable-http", "sse"]

    def _headers(self) -> dict[str, str] | None:
        return {"Authorization": f"Bearer {self.token}"} if self.token else None

    def _transport(self, kind: Kind) -> tuple[Any, httpx2.AsyncClient | None]:
        """The MCP transport of `kind`, and the HTTP client it uses if it is ours to close."""
        settings = self.settings
        if kind == "sse":
            transport = sse_client(
                self.url,
                headers=self._headers(),
                timeout=settings.connect_timeout,
                sse_read_timeout=max(300.0, settings.call_timeout),
            )
            return transport, None
        http = httpx2.AsyncClient(
            headers=self._headers(),
            timeout=httpx2.Timeout(settings.connect_timeout, read=max(300.0, settings.call_timeout)),
        )
        return streamable_http_client(self.url, http_client=http), http

    async def _open(self, kind: Kind) -> _Session:
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        closing = asyncio.Event()
        settings = self.settings

        async def own() -> None:
            try:
                transport, http = self._transport(kind)
                async with contextlib.AsyncExitStack() as stack:
                    if http is not None:
                        await stack.enter_async_context(http)
                    client = Client(
                        transport,
                        mode="auto",
                        read_timeout_seconds=settings.call_timeout,
                        client_info=CLIENT_INFO,
                        cache=None,
                    )
                    await stack.enter_async_context(client)
                    ready.set_result(client)
                    await closing.wait()
            except BaseException as e:
                if not ready.done():  # connecting failed: `_open` reports it
                    ready.set_exception(e if isinstance(e, Exception) else McpFailure(describe(e)))
                    return
                if isinstance(e, asyncio.CancelledError) and closing.is_set():
                    return
                log.info("MCP session to %s ended: %s", self.url, describe(e))
                raise  # kept on the task: `_run` reports it to the calls it breaks

        owner = asyncio.create_task(own(), name=f"mcp-session {self.url}")
        try:
            client = await asyncio.wait_for(asyncio.shield(ready), self.settings.connect_timeout)
        except TimeoutError:
            closing.set()
            owner.cancel()
            # The cancelled owner still settles `ready`; nobody awaits it any more.
            ready.add_done_callback(lambda f: None if f.cancelled() else f.exception())
            raise McpFailure(
                f"no answer within {self.settings.connect_timeout:g} s while connecting"
            ) from None
        except BaseException:
            closing.set()
            owner.cancel()
            raise
        log.info("MCP session to %s open (%s, protocol %s)", self.url, kind, client.protocol_version)
        return _Session(client, owner, closing, kind)

    async def _connect(self) -> _Session:
        order = self._transport_order()
        first_error: BaseException | None = None
        for kind in order:
            try:
                session = await self._open(kind)
            except McpFailure:
                raise
            except Exception as e:
                if first_error is None:
                    first_error = e
                if _is_http_rejection(e):
                    continue  # try the other transport
                raise McpFailure(describe(e)) from e
            self._kinds[self.url] = kind
            return session
        assert first_error is not None
        raise McpFailure(describe(first_error)) from first_error

    async def _current(self) -> tuple[_Session, bool]:
        """The live session and whether it was opened for this call."""
        async with self._lock:
            if self._session is not None and self._session.alive:
                return self._session, False
            stale, self._session = self._session, None
            if stale is not None:
                await stale.close()
            self._session = await self._connect()
            return self._session, True

    async def _drop(self, session: _Session) -> None:
        async with self._lock:
            if self._session is session:
                self._session = None
        await session.close()

    async def _run(self, session: _Session, op: Callable[[Client], Awaitable[T]]) -> T:
        call = asyncio.ensure_future(op(session.client))
        try:
            done, _ = await asyncio.wait(
                {call, session.owner}, timeout=self.settings.call_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            call.cancel()
            raise
        if call in done:
            try:
                return call.result()
            except MCPError as e:
                if _lost_session(e):
                    raise McpFailure(describe(e), retryable=True, unsent=_unknown_session(e)) from e
                raise McpFailure(describe(e)) from e
            except McpFailure:
                raise
            except Exception as e:
                raise McpFailure(describe(e), retryable=not session.alive, unsent=_never_connected(e)) from e
        call.cancel()
        if session.owner in done:
            reason = session.owner.exception() if not session.owner.cancelled() else None
            raise McpFailure(
                describe(reason) if reason else "the connection was closed",
                retryable=True,
                unsent=_never_connected(reason),
            )
        raise McpFailure(f"no answer within {self.settings.call_timeout:g} s")

    async def request(self, op: Callable[[Client], Awaitable[T]], idempotent: bool = True) -> T:
        """Runs `op` on the session; a broken session is replaced and `op` resent once, if `idempotent`
        or if the failed attempt certainly never reached the server."""
        self.last_used = time.monotonic()
        session, fresh = await self._current()
        try:
            return await self._run(session, op)
        except McpFailure as e:
            if not e.retryable:
                raise
            await self._drop(session)
            if fresh:
                raise
            if not idempotent and not e.unsent:
                log.info("MCP session to %s broke (%s) after the call was sent: not resent", self.url, e)
                raise
            log.info("MCP session to %s broke (%s); reconnecting", self.url, e)
        session, _ = await self._current()
        try:
            return await self._run(session, op)
        except McpFailure as e:
            if e.retryable:
                await self._drop(session)
            raise

    async def list_tools(self) -> list[Tool]:
        async def op(client: Client) -> list[Tool]:
            tools: list[Tool] = []
            cursor: str | None = None
            for _ in range(MAX_TOOL_PAGES):
                page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                tools.extend(Tool(t.name, t.description or "", dict(t.input_schema)) for t in page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            return tools

        return await self.request(op)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> CallToolResult:
        async def op(client: Client) -> CallToolResult:
            return await client.call_tool(name, arguments)

        return await self.request(op, idempotent=False)

    async def close(self) -> None:
        async with self._lock:
            session, self._session = self._session, None
        if session is not None:
            await session.close()


def tool_result(result: CallToolResult) -> ToolResult:
    """A tool's answer as the skill sees it: text contents, or the error text (`isError`)."""
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    if result.is_error:
        return "\n\n".join(texts) if texts else "The tool reported an error without a message."
    others = sorted({c.type for c in result.content if not isinstance(c, TextContent)})
    if others:
        return (
            f"The tool answered with content of type {', '.join(others)}; "
            "skills can only receive text from tools."
        )
    return ToolOutput(texts)


def arguments_of(request: InvokeRequest) -> dict[str, Any]:
    """Argument values arrive as JSON bytes; MCP wants them as one JSON object."""
    arguments: dict[str, Any] = {}
    for argument in request.arguments:
        try:
            arguments[argument.name] = json.loads(argument.value)
        except (ValueError, UnicodeDecodeError) as e:
            raise McpFailure(f"Error deserializing argument {argument.name}: {e}") from None
    return arguments


def could_not_execute(error: object) -> str:
    return f"The tool call could not be executed, original error: {error}"


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
