"""Worker-thread hand-off of an invocation: one wake-up of the loop when the guest's outcome is ready.

`submit` replaces `loop.run_in_executor`, which chains the executor's future to a loop future through
two layers of callbacks and state copies; here the worker thread settles the loop future directly with
one `call_soon_threadsafe`. Work that does not belong to the answer (waking the spare-instance maker)
runs after the outcome is on its way (`after_hand_over`), so on a busy CPU the loop is woken first.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger("skill_engine.runtime")


def submit(
    loop: asyncio.AbstractEventLoop,
    executor: ThreadPoolExecutor,
    context: contextvars.Context,
    function: Callable[..., Any],
    *args: Any,
) -> asyncio.Future[Any]:
    """`function(*args)` on a worker thread in `context`, as a loop future (the executor's own future
    is not used: the work item never raises)."""
    future: asyncio.Future[Any] = loop.create_future()

    def work() -> None:
        later: list[Callable[[], None]] = []
        _later.tasks = later
        try:
            result = context.run(function, *args)
        except BaseException as e:
            _hand_over(loop, _set_exception, future, e)
        else:
            _hand_over(loop, settle, future, result)
        finally:
            _later.tasks = None
            for task in later:
                try:
                    context.run(task)
                except Exception:  # the answer is out; one failed clean-up must not skip the others
                    log.exception("work after an invocation's hand-over failed")

    executor.submit(work)
    return future


class _Later(threading.local):
    tasks: list[Callable[[], None]] | None = None


_later = _Later()


def after_hand_over(task: Callable[[], None]) -> None:
    """Runs `task` on this worker thread once the invocation's outcome is on its way to the loop (e.g.
    waking the spare-instance maker, which would otherwise compete with the loop for the CPU first)."""
    if _later.tasks is None:
        task()
    else:
        _later.tasks.append(task)


def _hand_over(loop: asyncio.AbstractEventLoop, finish: Callable[..., None], *args: Any) -> None:
    # RuntimeError: the loop closed (shutdown) while the guest ran, nobody waits any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(finish, *args)


def settle(future: asyncio.Future[Any], result: Any = None) -> None:
    """Sets a loop future's result unless it is already done (cancelled, or settled by someone else)."""
    if not future.done():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        # If we stopped waiting (deadline, cancellation) nobody retrieves it: no "never retrieved" noise.
        future.exception()
