"""Upstream inference streams as pull-based objects a guest can call `next()` on.

The HTTP response is opened lazily on the first `next()` and closed when the stream ends, when the guest
drops the resource, or when the invocation ends for any reason (`close()` is safe from any thread).

The body is read as bytes, a network chunk at a time, and split into events here (`SseSplitter`), by
httpx-sse's rules: one pass over each chunk instead of an async generator per layer (bytes, text, lines,
events) per event, which was most of the event loop's time in a stream (bench/RESULTS.md, "Session 6 —
rate"). Each event's payload is parsed only when the stream reaches it, so an error event or an invalid
chunk fails the stream after the events before it, as before. A response whose charset is not UTF-8 is
read through httpx-sse itself.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

import httpx
import orjson
from httpx_sse import EventSource, SSEError

from skill_engine.csi.errors import CsiError

Event = TypeVar("Event")

NOT_AN_EVENT_STREAM = "The inference backend did not answer with an event stream: {}"
_DONE = b"[DONE]"
DRAIN_SECONDS = 0.05
DRAIN_BYTES = 65536
"""After `[DONE]` the rest of the body (normally only the chunked encoding's end) is read for at most this
long and this much, so that the connection goes back to the pool instead of a new one (and for an https
backend a TLS handshake) per stream; what does not end by then is closed, as before."""


class SseSplitter:
    """The `data` of each complete event in an event stream's bytes, fed chunk by chunk.

    httpx-sse's rules on bytes: lines end at `\\r\\n`, `\\r` or `\\n` (also across chunks); `data` lines
    (`data` alone, or `data:` and a value with one leading space dropped) are joined with `\\n`; a blank
    line ends an event; comments and other fields are ignored; a last event without its blank line is
    dropped. Events without data are not returned (the stream skips them).
    """

    def __init__(self) -> None:
        self._tail = b""
        self._cr = False
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._cr:
            self._cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if self._tail:
            chunk = self._tail + chunk
        if b"\r" in chunk:
            self._cr = chunk[-1:] == b"\r"  # a `\n` at the start of the next chunk belongs to it
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        self._tail = lines.pop()
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(b"\n".join(data))
                    data = self._data = []
            elif line[:5] == b"data:":
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line == b"data":
                data.append(b"")
        return events


def _check_event_stream(response: httpx.Response) -> None:
    """httpx-sse's check, with its message."""
    content_type = response.headers.get("content-type", "").partition(";")[0]
    if "text/event-stream" not in content_type:
        raise CsiError(
            NOT_AN_EVENT_STREAM.format(
                f"Expected response header Content-Type to contain 'text/event-stream', got {content_type!r}"
            )
        )


def _is_utf8(response: httpx.Response) -> bool:
    try:
        return codecs.lookup(response.encoding or "utf-8").name == "utf-8"
    except LookupError:
        return False


class SseReader:
    """The JSON payloads of a response's events until `[DONE]`; `next()` returns None at the end.

    A payload is parsed when it is taken: `CsiError` for an error event or an invalid chunk, after the
    payloads before it. `httpx.HTTPError` from reading the body passes through.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._splitter = SseSplitter()
        self._payloads: collections.deque[bytes] = collections.deque()
        self._chunks: AsyncIterator[bytes] | None = None
        self._fallback: AsyncIterator[dict[str, Any]] | None = None
        self._ended = False

    async def next(self) -> dict[str, Any] | None:
        """The next payload, None at the end; after an error, the stream has ended."""
        if self._ended:
            return None
        if self._fallback is not None:
            try:
                return await self._fallback.__anext__()
            except StopAsyncIteration:
                return None
        try:
            return await self._next()
        except BaseException:
            self._ended = True
            self._payloads.clear()
            raise

    async def _next(self) -> dict[str, Any] | None:
        if self._chunks is None:  # the first call: httpx-sse checked here too
            _check_event_stream(self._response)
            if not _is_utf8(self._response):
                self._fallback = _sse_data_by_httpx_sse(self._response)
                return await self.next()
            self._chunks = _body(self._response)
        payloads = self._payloads
        while True:
            while payloads:
                data = payloads.popleft()
                if not data:
                    continue  # an event without data
                if _DONE in data and data.decode("utf-8", "replace").strip() == "[DONE]":
                    self._ended = True
                    payloads.clear()
                    await self._drain()
                    return None
                parsed = _loads_bytes(data)
                if isinstance(parsed, dict):
                    if "error" in parsed and "choices" not in parsed:
                        raise CsiError(
                            f"The inference backend reported an error mid-stream: {parsed['error']}"
                        )
                    return parsed
            if self._ended:
                return None
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._ended = True
                return None
            payloads.extend(self._splitter.feed(chunk))

    async def _drain(self) -> None:
        """Reads the body to its end, bounded; failures are ignored (the response is closed next anyway)."""
        assert self._chunks is not None
        received = 0
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                async for chunk in self._chunks:
                    received += len(chunk)
                    if received > DRAIN_BYTES:
                        return
        except Exception:  # a timeout or a broken body: closing the response is what remains
            pass


async def sse_data(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """JSON payloads of the stream's events until `[DONE]` (httpx-sse's rules: a multi-line `data:` field
    is one payload, its lines joined with newlines)."""
    reader = SseReader(response)
    while (payload := await reader.next()) is not None:
        yield payload


async def _sse_data_by_httpx_sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """`sse_data` through httpx-sse, for a response in a charset other than UTF-8."""
    try:
        async for event in EventSource(response).aiter_sse():
            data = event.data
            if not data:
                continue  # a comment, a keep-alive or an event without data
            if data.strip() == "[DONE]":
                return
            parsed = _loads(data)
            if isinstance(parsed, dict):
                if "error" in parsed and "choices" not in parsed:
                    raise CsiError(f"The inference backend reported an error mid-stream: {parsed['error']}")
                yield parsed
    except SSEError as e:
        raise CsiError(NOT_AN_EVENT_STREAM.format(e)) from None


def _body(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's bytes: as sent when it has no content coding (one generator layer less per network
    chunk, and streams send one chunk per event), else decoded by httpx."""
    coding = response.headers.get("content-encoding", "identity").strip().lower()
    if coding in ("", "identity") and not response.is_stream_consumed:  # consumed: read into memory
        return response.aiter_raw()
    return response.aiter_bytes()


def _loads_bytes(data: bytes) -> Any:
    """`_loads` of the payload decoded as httpx decodes text (UTF-8, invalid bytes replaced)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _loads(data.decode("utf-8", "replace"))


def _loads(data: str) -> Any:
    """orjson, and json for what only json accepts (`NaN`, integers beyond 64 bits): same results."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except ValueError:
            raise CsiError(f"The inference backend sent an invalid stream chunk: {data[:200]}") from None


class UpstreamStream(Generic[Event]):
    def __init__(
        self,
        open_response: Callable[[], Any],
        to_events: Callable[[dict[str, Any]], list[Event]],
        on_error: Callable[[httpx.Response], CsiError],
    ) -> None:
        self._open = open_response
        self._on_error = on_error
        self._to_events = to_events
        self._context: Any = None
        self._reader: SseReader | None = None
        self._pending: collections.deque[Event] = collections.deque()
        self._loop = asyncio.get_running_loop()
        self.closed = False

    async def next(self) -> Event | None:
        pending = self._pending
        while not pending:
            if self.closed:
                return None
            if self._reader is None:
                self._context = self._open()
                response = await self._context.__aenter__()
                if response.status_code >= 400:
                    await response.aread()
                    await self.aclose()
                    raise self._on_error(response)
                self._reader = SseReader(response)
            try:
                chunk = await self._reader.next()
            except httpx.HTTPError as e:
                await self.aclose()
                raise CsiError(f"The inference stream broke off: {type(e).__name__}: {e}") from e
            if chunk is None:
                await self.aclose()
                return None
            pending.extend(self._to_events(chunk))
        return pending.popleft()

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._context is not None:
            with contextlib.suppress(Exception):
                await self._context.__aexit__(None, None, None)

    def close(self) -> None:
        """Closes the upstream connection from any thread, without waiting."""
        if not self.closed:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.aclose()))
