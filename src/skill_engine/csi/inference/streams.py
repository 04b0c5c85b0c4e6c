"""Upstream inference streams as pull-based objects a guest can call `next()` on.

The HTTP response is opened lazily on the first `next()` and closed when the stream ends, when the guest
drops the resource, or when the invocation ends for any reason (`close()` is safe from any thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

import httpx
import orjson
from httpx_sse import EventSource, SSEError

from skill_engine.csi.errors import CsiError

Event = TypeVar("Event")


async def sse_data(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """JSON payloads of the stream's events until `[DONE]` (httpx-sse: a multi-line `data:` field is one
    payload, its lines joined with newlines)."""
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
        raise CsiError(f"The inference backend did not answer with an event stream: {e}") from None


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
        self._chunks: AsyncIterator[dict[str, Any]] | None = None
        self._pending: list[Event] = []
        self._loop = asyncio.get_running_loop()
        self.closed = False

    async def next(self) -> Event | None:
        while not self._pending:
            if self.closed:
                return None
            if self._chunks is None:
                self._context = self._open()
                response = await self._context.__aenter__()
                if response.status_code >= 400:
                    await response.aread()
                    await self.aclose()
                    raise self._on_error(response)
                self._chunks = sse_data(response)
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                await self.aclose()
                return None
            except httpx.HTTPError as e:
                await self.aclose()
                raise CsiError(f"The inference stream broke off: {type(e).__name__}: {e}") from e
            self._pending.extend(self._to_events(chunk))
        return self._pending.pop(0)

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
