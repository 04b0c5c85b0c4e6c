"""One reconnecting session to one MCP server URL: transport discovery, bounded calls, safe resends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, Implementation

from skill_engine.csi.mcp.failures import (
    McpFailure,
    describe,
    is_http_rejection,
    lost_session,
    never_connected,
    unknown_session,
)
from skill_engine.csi.types import Tool

log = logging.getLogger("skill_engine.mcp")

T = TypeVar("T")
Kind = Literal["streamable-http", "sse"]
CLIENT_INFO = Implementation(name="SkillEngine", version="0.1.0")
MAX_TOOL_PAGES = 100


@dataclass(frozen=True)
class McpSettings:
    refresh_interval: float = 60.0
    call_timeout: float = 60.0
    connect_timeout: float = 10.0
    token_session_idle: float = 300.0
    """Sessions opened for one caller's token are closed after this long unused."""
    max_token_sessions: int = 64


@dataclass
class _Session:
    client: Client
    owner: asyncio.Task[None]
    closing: asyncio.Event
    kind: Kind
    opened: float = field(default_factory=time.monotonic)
    incoming: Any = None
    """The transport's stream of messages from the server (an anyio receive stream), when known."""

    @property
    def alive(self) -> bool:
        """Not closed, and the server can still answer: the HTTP+SSE transport closes its side of the
        incoming stream when the event stream ends (a restarted server) but keeps the session open, so a
        call sent on it could only fail, unresendable for a tool call although the new server never ran it."""
        if self.owner.done() or self.closing.is_set():
            return False
        return self.incoming is None or _can_still_receive(self.incoming)

    async def close(self) -> None:
        self.closing.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.owner), 5)
        except (TimeoutError, asyncio.CancelledError):
            self.owner.cancel()
        except Exception:  # the owner keeps its failure; closing must not raise
            pass


def _can_still_receive(stream: Any) -> bool:
    """Whether anything can still arrive on an anyio memory receive stream (mcp wraps it in a
    `ContextReceiveStream`); a stream of another kind counts as open."""
    statistics = getattr(getattr(stream, "_inner", stream), "statistics", None)
    return statistics is None or statistics().open_send_streams > 0


@contextlib.asynccontextmanager
async def _watched(transport: Any, incoming: list[Any]) -> Any:
    """`transport`, remembering the stream it yields for messages from the server."""
    async with transport as streams:
        incoming.append(streams[0])
        yield streams


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

        incoming: list[Any] = []

        async def own() -> None:
            try:
                transport, http = self._transport(kind)
                transport = _watched(transport, incoming)
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
        return _Session(client, owner, closing, kind, incoming=incoming[0] if incoming else None)

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
                if is_http_rejection(e):
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
                if lost_session(e):
                    raise McpFailure(describe(e), retryable=True, unsent=unknown_session(e)) from e
                raise McpFailure(describe(e)) from e
            except McpFailure:
                raise
            except Exception as e:
                raise McpFailure(describe(e), retryable=not session.alive, unsent=never_connected(e)) from e
        call.cancel()
        if session.owner in done:
            reason = session.owner.exception() if not session.owner.cancelled() else None
            raise McpFailure(
                describe(reason) if reason else "the connection was closed",
                retryable=True,
                unsent=never_connected(reason),
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
