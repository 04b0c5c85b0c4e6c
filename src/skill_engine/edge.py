"""The HTTP server's own limits, before any request reaches the application (docs/security.md).

uvicorn bounds neither how long a client may take to send a request head nor how many headers it may
send, and its `limit_concurrency` answers a bare 503 that keeps the connection. `GuardedHttpProtocol`
(uvicorn's httptools protocol plus these checks) adds, per connection:

* `REQUEST_HEADER_TIMEOUT` (10 s): a new connection or a started request must deliver its complete head
  in time, else 408 and close (a slowloris client trickling header lines is cut off; a connection that
  sends nothing is closed silently);
* `REQUEST_BODY_TIMEOUT` (30 s): once the head is in, the body may pause at most this long between two
  reads, unless the engine itself stopped reading;
* at most `MAX_HEADER_BYTES` for request line plus headers and `MAX_HEADER_COUNT` headers, else 431;
* `MAX_CONNECTIONS` (1024) open connections: a connection that arrives while the cap is reached gets 503
  with `Retry-After` for its request and is closed; connections already open keep working.

Idle keep-alive connections are closed after `KEEP_ALIVE_TIMEOUT` (uvicorn's `timeout_keep_alive`).
All uvicorn settings of the engine come from `server_options`, so start-up code has one place to look.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from skill_engine.config import Settings

log = logging.getLogger("skill_engine.edge")

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADER_COUNT = 100
KEEP_ALIVE_TIMEOUT = 75
"""Longer than the idle timeout of common load balancers (60 s): with uvicorn's 5 s a client that reuses
a connection just as the server closes it gets a reset (seen under load in bench.overhead)."""
TOO_MANY_CONNECTIONS = (
    "The Kernel has reached its maximum of {n} open connections. Please try again later, if the situation "
    "persists you may want to contact the operators."
)


@dataclass(frozen=True)
class EdgeLimits:
    max_connections: int = 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EdgeLimits:
        return cls(settings.max_connections, settings.request_header_timeout, settings.request_body_timeout)


def server_options(limits: EdgeLimits) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the engine's listener."""
    protocol = type("EngineHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})
    return {"http": protocol, "timeout_keep_alive": KEEP_ALIVE_TIMEOUT}


class _Refusal(Exception):
    def __init__(self, status: int, reason: bytes, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.text = text


def _head_too_large() -> _Refusal:
    return _Refusal(431, b"Request Header Fields Too Large", "Request header fields too large")


def _head_timeout() -> _Refusal:
    return _Refusal(408, b"Request Timeout", "The request head was not received in time")


class GuardedHttpProtocol(HttpToolsProtocol):
    limits = EdgeLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._engine_app = self.app
        self._in_head = True
        self._head_bytes = 0
        self._parsed_head = 0
        self._over_cap = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        # A request head or body this read left unfinished; its timer is armed once the read is parsed,
        # so a request that arrives whole (the usual case) arms and cancels no timer at all.
        self._head_started = False
        self._in_body = False
        self._refusal: _Refusal | None = None

    # -- connection ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # Decided on arrival: connections beyond the cap are refused, the ones before them keep working.
        self._over_cap = len(self.connections) > self.limits.max_connections
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        elif self._body_timer is not None:
            self._arm_body_timer()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(self._refusal)
                return
            log.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and self._head_bytes > MAX_HEADER_BYTES:
            self._refuse(_head_too_large())
            return
        if self._head_started and self._head_timer is None:
            self._arm_head_timer()
        if self._in_body and self._body_timer is None:
            self._arm_body_timer()

    # -- parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._parsed_head = 0
        self._head_started = True  # its timer is armed after this read if the head is still unfinished

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._parsed_head += len(url)
        self._check_head()

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._parsed_head += len(name) + len(value) + 4
        self._check_head()

    def _check_head(self) -> None:
        """Head limits on what was parsed (a head that arrives in one read is counted here)."""
        if len(self.headers) > MAX_HEADER_COUNT or self._parsed_head > MAX_HEADER_BYTES:
            self._refusal = _head_too_large()
            raise self._refusal  # httptools turns it into an HttpParserError for data_received

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_started = False
        self._head_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        over = self._over_cap
        self.app = _too_many_connections(self.limits.max_connections) if over else self._engine_app
        if over:
            log.warning("request refused: more than %d connections open", self.limits.max_connections)
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = _HeldHead(self.transport, self.loop)  # type: ignore[assignment]
        self._in_body = True  # its timer is armed after this read if the body is still unfinished

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._in_head = True  # whatever arrives next starts a new request head
        super().on_message_complete()

    # -- timers -------------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _arm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined head behind a running request: the running one decides
        if self._head_bytes:
            log.info("closing a connection that did not send its request head in time")
            self._refuse(_head_timeout())
        else:
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the engine is not reading: not the client's fault
            self._arm_body_timer()
            return
        log.info("closing a connection whose request body stalled")
        self.transport.close()

    def _refuse(self, refusal: _Refusal) -> None:
        self._cancel_timers()
        if self.transport.is_closing():
            return
        text = refusal.text.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (refusal.status, refusal.reason, len(text), text)
        )
        self.transport.close()


class _HeldHead:
    """One response's view of the connection: the response head is held back until the first body write,
    so a small response leaves in one send instead of two (one packet, one wake-up of the client; on a
    busy machine the first send lets the client preempt the engine just to find the body missing).

    A head with no body right behind it (a streaming response, a HEAD request) is written at the next
    turn of the event loop, so nothing waits for a body that comes later.
    """

    __slots__ = ("_head", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started:  # uvicorn's first write of a response is its head (or `100 Continue`)
            self._started = True
            self._head = data
            self._loop.call_soon(self.flush)
        elif self._head is not None:
            head, self._head = self._head, None
            self._transport.writelines((head, data))
        else:
            self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _too_many_connections(limit: int) -> Any:
    text = TOO_MANY_CONNECTIONS.format(n=limit).encode()

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(text)).encode()),
                    (b"retry-after", b"1"),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": text})

    return refuse
