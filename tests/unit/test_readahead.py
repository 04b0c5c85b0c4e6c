"""Upstream streams read ahead for the guest (runtime/readahead.py).

A real event loop in a thread of its own plays the engine's loop; the test's thread plays the guest's
worker thread and takes events the way `next_event` does (`ready()`, else `next()` on the loop). The
upstream stream has every event ready at once, as when one network chunk carried many: that is when
reading ahead could keep the loop's thread busy while the guest's thread waits to run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from skill_engine.runtime.readahead import AHEAD, NOT_READY, ReadAhead


class ReadyStream:
    """Every event available without waiting; counts how many were read."""

    def __init__(self, count: int, fail_after: int | None = None) -> None:
        self.count = count
        self.fail_after = fail_after
        self.read = 0
        self.closed = False

    async def next(self) -> str | None:
        if self.fail_after is not None and self.read == self.fail_after:
            raise RuntimeError("upstream broke")
        if self.read == self.count:
            return None
        self.read += 1
        return f"event {self.read}"

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def open_ahead(loop: asyncio.AbstractEventLoop, stream: ReadyStream) -> ReadAhead:
    async def opened() -> ReadAhead:
        ahead = ReadAhead(stream, asyncio.get_running_loop())
        ahead.start()
        return ahead

    return asyncio.run_coroutine_threadsafe(opened(), loop).result(5)


def take(loop: asyncio.AbstractEventLoop, ahead: ReadAhead) -> Any:
    """What the guest's `next()` gets."""
    event = ahead.ready()
    if event is not NOT_READY:
        return event
    return asyncio.run_coroutine_threadsafe(ahead.next(), loop).result(5)


def settle(loop: asyncio.AbstractEventLoop) -> None:
    """Lets the loop run whatever it can run now (a few turns)."""

    async def turns() -> None:
        for _ in range(20):
            await asyncio.sleep(0)

    asyncio.run_coroutine_threadsafe(turns(), loop).result(5)


def test_reading_waits_after_the_first_event_until_the_guest_asks_again(
    loop: asyncio.AbstractEventLoop,
) -> None:
    stream = ReadyStream(500)
    ahead = open_ahead(loop, stream)
    assert take(loop, ahead) == "event 1"
    settle(loop)
    # The guest's thread is handing the first token on: the loop must not be parsing more meanwhile.
    assert stream.read == 1
    assert take(loop, ahead) == "event 2"
    settle(loop)
    # From the second event on it reads ahead again, up to its bound.
    assert stream.read == 2 + AHEAD
    ahead.close()
    settle(loop)


def test_every_event_arrives_in_order_then_the_end(loop: asyncio.AbstractEventLoop) -> None:
    stream = ReadyStream(300)
    ahead = open_ahead(loop, stream)
    events = []
    while (event := take(loop, ahead)) is not None:
        events.append(event)
    assert events == [f"event {n}" for n in range(1, 301)]
    assert take(loop, ahead) is None


def test_an_empty_stream_ends_at_once(loop: asyncio.AbstractEventLoop) -> None:
    ahead = open_ahead(loop, ReadyStream(0))
    assert take(loop, ahead) is None
    assert take(loop, ahead) is None


def test_an_upstream_error_comes_after_the_events_before_it(loop: asyncio.AbstractEventLoop) -> None:
    stream = ReadyStream(100, fail_after=3)
    ahead = open_ahead(loop, stream)
    assert [take(loop, ahead) for _ in range(3)] == ["event 1", "event 2", "event 3"]
    with pytest.raises(RuntimeError, match="upstream broke"):
        take(loop, ahead)


def test_closing_while_reading_waits_after_the_first_event(loop: asyncio.AbstractEventLoop) -> None:
    stream = ReadyStream(100)
    ahead = open_ahead(loop, stream)
    assert take(loop, ahead) == "event 1"
    ahead.close()
    settle(loop)
    assert stream.closed
    assert take(loop, ahead) is None
    assert stream.read == 1
