"""Upstream streams read ahead on the event loop, so a guest's `next()` rarely waits for a loop round trip.

Without it every `chat-stream.next` hands a coroutine to the loop and blocks the guest's thread until the
loop has run it: one thread hand-off per token. A `ReadAhead` starts reading the stream (with all its
layers: governance, GenAI span, usage) on the loop as soon as the guest opens it, into a buffer of at most
`AHEAD` events; `ready()` takes a buffered event on the guest's thread without involving the loop. Only an
empty buffer makes the guest wait, through `Invocation.call` as before, so deadlines, stops and CSI errors
behave exactly as without read-ahead; an upstream error reaches the guest after the events before it.
Measured with the `write` fast path in place (bench/RESULTS.md, "Session 5 — streams"): without it, 8
streams ran at two thirds of the events/s for 1.5 times the engine CPU.

The first event is the exception: reading pauses after it until the guest asks for the second. Reading
ahead holds the GIL on the loop's thread while it parses what the network delivered (up to `AHEAD`
events), and the guest's thread, woken with the first event, waited for it up to a GIL switch interval
(5 ms) before it could hand the first token on: the time to the first token is what interactive clients
see, throughput only counts from the second event on.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from skill_engine.csi.calls import EventStream

AHEAD = 64
"""Events buffered before reading pauses (back-pressure towards the backend)."""

NOT_READY = object()
"""What `ready()` answers when nothing is buffered."""

_END = object()


class ReadAhead:
    def __init__(self, stream: EventStream[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.inner = stream
        self._loop = loop
        self._buffer: collections.deque[Any] = collections.deque()
        self._error: BaseException | None = None
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._ended = False  # the end was handed out: asking again answers the end again
        # Reading waits after the first event until the guest asks again (`ready()` sets it).
        self._first_taken = False
        self._asked_again = asyncio.Event()

    def start(self) -> None:
        """Starts reading; call on the loop."""
        self._task = self._loop.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            while True:
                if len(self._buffer) >= AHEAD:
                    self._room.clear()
                    await self._room.wait()
                    continue
                event = await self.inner.next()
                self._buffer.append(_END if event is None else event)
                self._arrived.set()
                if event is None:
                    return
                if not self._asked_again.is_set():
                    await self._asked_again.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._error = e
            self._arrived.set()

    def ready(self) -> Any:
        """A buffered event (None at the end), or NOT_READY; any thread, never blocks."""
        if self._first_taken:
            self._first_taken = False
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._asked_again.set)
        try:
            event = self._buffer.popleft()
        except IndexError:
            return None if self._ended else NOT_READY
        if event is _END:
            self._ended = True
        elif not self._asked_again.is_set():
            self._first_taken = True
        if not self._room.is_set():
            self._loop.call_soon_threadsafe(self._room.set)
        return None if event is _END else event

    async def next(self) -> Any:
        """The next event, waiting for it on the loop (an upstream error is raised here, in order)."""
        while True:
            event = self.ready()
            if event is not NOT_READY:
                return event
            if self._error is not None:
                raise self._error
            if self._closed:
                return None
            self._arrived.clear()
            if self._buffer or self._error is not None:
                continue
            await self._arrived.wait()

    def close(self) -> None:
        """Stops reading and closes the upstream stream; any thread."""
        if self._closed:
            return
        self._closed = True
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel)
        self.inner.close()

    def _cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._arrived.set()
