"""The worker-thread hand-off of invocations (runtime/handoff.py), with a real thread pool and loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from skill_engine.runtime.handoff import after_hand_over, submit

request: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


T = TypeVar("T")


def run(coro_fn: Callable[[ThreadPoolExecutor], Coroutine[Any, Any, T]]) -> T:
    with ThreadPoolExecutor(max_workers=2) as executor:
        return asyncio.run(coro_fn(executor))


def test_result_and_context_reach_the_loop() -> None:
    async def main(executor: ThreadPoolExecutor) -> tuple[str, str]:
        request.set("req-1")
        loop = asyncio.get_running_loop()
        future = submit(loop, executor, contextvars.copy_context(), lambda x: (x, request.get()), "out")
        value, seen = await asyncio.wait_for(future, 10)
        return value, seen

    assert run(main) == ("out", "req-1")


def test_an_exception_reaches_the_awaiting_side() -> None:
    def fails() -> None:
        raise ValueError("guest trapped")

    async def main(executor: ThreadPoolExecutor) -> None:
        future = submit(asyncio.get_running_loop(), executor, contextvars.copy_context(), fails)
        with pytest.raises(ValueError, match="guest trapped"):
            await asyncio.wait_for(future, 10)

    run(main)


def test_work_after_the_hand_over_runs_once_the_outcome_is_settled() -> None:
    order: list[str] = []
    settled = threading.Event()

    def invocation() -> str:
        def later() -> None:
            # The loop was asked to settle the future before this runs; give it the time to do so.
            order.append("later, settled" if settled.wait(10) else "later, not settled")

        after_hand_over(later)
        order.append("guest")
        return "output"

    async def main(executor: ThreadPoolExecutor) -> str:
        future = submit(asyncio.get_running_loop(), executor, contextvars.copy_context(), invocation)
        future.add_done_callback(lambda _: settled.set())
        result: str = await asyncio.wait_for(future, 10)
        for _ in range(100):  # `later` runs on the worker thread after the hand-over
            if len(order) == 2:
                break
            await asyncio.sleep(0.05)
        return result

    assert run(main) == "output"
    assert order == ["guest", "later, settled"]


def test_outside_a_hand_over_the_work_runs_at_once() -> None:
    ran: list[bool] = []
    after_hand_over(lambda: ran.append(True))
    assert ran == [True]


def test_a_failing_piece_of_work_after_the_hand_over_does_not_skip_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []
    done = threading.Event()

    def invocation() -> str:
        def fails() -> None:
            raise OSError("instance teardown failed")

        def refill() -> None:
            ran.append("refill")
            done.set()

        after_hand_over(fails)
        after_hand_over(refill)
        return "answer"

    async def main(executor: ThreadPoolExecutor) -> str:
        future = submit(asyncio.get_running_loop(), executor, contextvars.copy_context(), invocation)
        return await asyncio.wait_for(future, 10)

    assert run(main) == "answer"
    assert done.wait(10)
    assert ran == ["refill"]
    assert "instance teardown failed" in caplog.text
