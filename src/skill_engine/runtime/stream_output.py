"""The bounded buffer between a stream skill's `write` (guest thread) and its response (event loop).

`write` used to hand every item to the loop and wait for it there: a task, a future and several thread
wake-ups per event. Here the guest's thread appends under a lock and wakes the loop only when the
response is waiting for an item; the response takes everything buffered at once, so it can send it as
one body chunk. A full buffer blocks the guest's thread (back-pressure towards a slow client) until the
response takes items or `interrupt()` is called (the invocation was stopped).

`close(end)` appends the end marker under the same lock: it comes after every item written before it,
and no item is accepted after it.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Callable
from typing import Any

from skill_engine.runtime.handoff import settle

WRITTEN = 0
FULL = 1
"""`write` outcomes besides stopped: the item is buffered; the wait for room timed out."""
CLOSED = 2
"""The buffer was closed (or interrupted by a stop): the item is dropped."""


class StreamOutput:
    def __init__(self, maxsize: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.maxsize = maxsize
        self._loop = loop or asyncio.get_running_loop()
        self._items: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._guests_waiting = 0
        self._getter: asyncio.Future[None] | None = None
        self._putters: list[asyncio.Future[None]] = []
        self._closed = False

    # -- producers -------------------------------------------------------------------------------------

    def write(self, item: Any, deadline: float, stopped: Callable[[], bool]) -> int:
        """Appends from a guest thread, waiting for room until `deadline` (monotonic); never on the loop.

        `stopped` is checked under the lock before every wait, and `interrupt()` takes the lock, so a
        stop cannot slip between the check and the wait.
        """
        with self._lock:
            while len(self._items) >= self.maxsize and not self._closed:
                if stopped():
                    return CLOSED
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return FULL
                self._guests_waiting += 1
                try:
                    self._room.wait(remaining)
                finally:
                    self._guests_waiting -= 1
            if self._closed or stopped():
                return CLOSED
            self._items.append(item)
            getter, self._getter = self._getter, None
        if getter is not None and not self._loop.is_closed():  # closed: the engine is shutting down
            self._loop.call_soon_threadsafe(settle, getter)
        return WRITTEN

    async def put(self, item: Any) -> None:
        """Appends from the loop (built-in skills), waiting for room; dropped once closed."""
        while True:
            with self._lock:
                if self._closed:
                    return
                if len(self._items) < self.maxsize:
                    self._append_on_loop(item)
                    return
                room = self._loop.create_future()
                self._putters.append(room)
            try:
                await room
            finally:
                if room in self._putters:
                    self._putters.remove(room)

    def close(self, end: Any) -> None:
        """Appends the end marker (beyond the bound) and refuses further items; call on the loop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._append_on_loop(end)
            self._room.notify_all()

    def interrupt(self) -> None:
        """Wakes a guest thread waiting for room, so it sees that its invocation was stopped; any thread."""
        with self._lock:
            self._room.notify_all()

    def _append_on_loop(self, item: Any) -> None:
        self._items.append(item)
        getter, self._getter = self._getter, None
        if getter is not None:
            settle(getter)

    # -- the consumer (on the loop) --------------------------------------------------------------------

    async def get_ready(self) -> list[Any]:
        """Every buffered item, in order, waiting until there is at least one."""
        return await self._take(None)

    async def get(self) -> Any:
        """The next item, waiting for one (items after it stay buffered)."""
        return (await self._take(1))[0]

    async def _take(self, limit: int | None) -> list[Any]:
        while True:
            with self._lock:
                if self._items:
                    if limit is None:
                        items = list(self._items)
                        self._items.clear()
                    else:
                        items = [self._items.popleft() for _ in range(min(limit, len(self._items)))]
                    if self._guests_waiting:
                        self._room.notify_all()
                    putters, self._putters = self._putters, []
                    break
                getter = self._getter = self._loop.create_future()
            try:
                await getter
            finally:
                with self._lock:
                    if self._getter is getter:
                        self._getter = None
        for room in putters:
            settle(room)
        return items
