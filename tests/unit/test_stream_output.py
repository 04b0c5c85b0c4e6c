"""A stream skill's `write` without a loop round trip (runtime/stream_output.py through Invocation.emit).

Real threads and a real event loop: the writer plays the guest's worker thread, the loop plays the
response. The end marker must come after every item written, however the two threads interleave: the
end is closed in the executor future's done callback, the earliest point the engine could do it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from skill_engine.csi.calls import CsiContext
from skill_engine.runtime.invocation import Invocation, InvocationStopped
from skill_engine.runtime.stream_output import StreamOutput

END = object()


def invocation(loop: asyncio.AbstractEventLoop, output: StreamOutput, timeout: float = 60) -> Invocation:
    inv = Invocation(loop, CsiContext("ns", "skill"), timeout)
    inv.stream = output
    return inv


async def drain(output: StreamOutput, pause_every: int = 0) -> list[Any]:
    received: list[Any] = []
    while True:
        batch = await output.get_ready()
        received.extend(batch)
        if batch[-1] is END:
            return received
        if pause_every and len(received) % pause_every == 0:
            await asyncio.sleep(0.001)  # the buffer fills: the writer waits for room


@pytest.mark.parametrize(("maxsize", "pause_every"), [(8, 0), (8, 3), (1, 0), (1000, 0)])
def test_the_end_marker_follows_every_item_written(maxsize: int, pause_every: int) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        output = StreamOutput(maxsize)
        inv = invocation(loop, output)

        def guest() -> None:
            for i in range(500):
                inv.emit(i)

        done = loop.run_in_executor(None, guest)
        done.add_done_callback(lambda _: output.close(END))
        received = await drain(output, pause_every)
        await done
        return received

    for _ in range(5):
        assert asyncio.run(main()) == [*range(500), END]


def test_the_end_marker_follows_items_written_while_the_loop_was_busy() -> None:
    """The writer finishes while the loop is blocked: its items are already in the buffer, before END."""

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        output = StreamOutput(8)
        inv = invocation(loop, output)
        written = threading.Event()

        def guest() -> None:
            for i in range(8):
                inv.emit(i)
            written.set()

        done = loop.run_in_executor(None, guest)
        done.add_done_callback(lambda _: output.close(END))
        assert written.wait(30)  # blocks the loop: nothing is handed over through it
        return await drain(output)

    assert asyncio.run(main()) == [*range(8), END]


def test_nothing_is_written_after_the_end() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        output = StreamOutput(8)
        inv = invocation(loop, output)
        output.close(END)
        with pytest.raises(InvocationStopped, match=r"^The invocation was cancelled\.$"):
            await loop.run_in_executor(None, inv.emit, "late")
        assert await output.get_ready() == [END]

    asyncio.run(main())


def full_writer(inv: Invocation, items: int) -> tuple[threading.Thread, list[BaseException], list[float]]:
    """A guest thread writing `items` items into a buffer that nobody reads."""
    errors: list[BaseException] = []
    ended: list[float] = []

    def guest() -> None:
        try:
            for i in range(items):
                inv.emit(i)
        except BaseException as e:
            errors.append(e)
        ended.append(time.monotonic())

    thread = threading.Thread(target=guest, daemon=True)
    thread.start()
    return thread, errors, ended


def test_a_full_buffer_holds_the_writer_until_the_response_takes_items() -> None:
    async def main() -> None:
        output = StreamOutput(2)
        inv = invocation(asyncio.get_running_loop(), output)
        thread, errors, _ = full_writer(inv, 5)
        await asyncio.sleep(0.3)
        assert thread.is_alive(), "the writer did not wait for room"
        received: list[Any] = []
        while len(received) < 5:
            received.extend(await output.get_ready())
        await asyncio.to_thread(thread.join, 30)
        assert received == [0, 1, 2, 3, 4]
        assert errors == []

    asyncio.run(main())


def test_stop_releases_a_writer_waiting_for_room_at_once() -> None:
    async def main() -> None:
        output = StreamOutput(2)
        inv = invocation(asyncio.get_running_loop(), output)
        thread, errors, ended = full_writer(inv, 5)
        await asyncio.sleep(0.3)
        assert thread.is_alive()
        stopped = time.monotonic()
        inv.stop("The invocation was cancelled.")
        await asyncio.to_thread(thread.join, 30)
        assert [str(e) for e in errors] == ["The invocation was cancelled."]
        assert isinstance(errors[0], InvocationStopped)
        assert ended[0] - stopped < 2  # not at the 60 s deadline
        assert await output.get_ready() == [0, 1]

    asyncio.run(main())


def test_the_deadline_releases_a_writer_waiting_for_room() -> None:
    async def main() -> None:
        output = StreamOutput(2)
        inv = invocation(asyncio.get_running_loop(), output, timeout=0.5)
        thread, errors, _ = full_writer(inv, 5)
        await asyncio.to_thread(thread.join, 30)
        assert [str(e) for e in errors] == ["Maximum skill execution time reached."]
        assert inv.stop_reason == "Maximum skill execution time reached."

    asyncio.run(main())


def test_a_stopped_invocation_writes_nothing() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        output = StreamOutput(8)
        inv = invocation(loop, output)
        inv.stop("Maximum skill CPU time reached.")
        with pytest.raises(InvocationStopped, match=r"^Maximum skill CPU time reached\.$"):
            await loop.run_in_executor(None, inv.emit, "item")
        output.close(END)
        assert await output.get_ready() == [END]

    asyncio.run(main())


def test_items_put_on_the_loop_wait_for_room_and_keep_their_order() -> None:
    """Built-in skills write from the loop."""

    async def main() -> list[Any]:
        output = StreamOutput(2)

        async def produce() -> None:
            for i in range(20):
                await output.put(i)
            output.close(END)

        producer = asyncio.ensure_future(produce())
        await asyncio.sleep(0.05)
        assert not producer.done(), "put did not wait for room"
        received = await drain(output)
        await producer
        return received

    assert asyncio.run(main()) == [*range(20), END]
