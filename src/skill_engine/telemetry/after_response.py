"""Work of one request that need not keep its client waiting: run once the response has been sent.

The HTTP middleware (middleware/telemetry.py) opens a `Deferred` per request and runs what was deferred
right after the application returned, i.e. after the last byte of the response was handed to the socket,
and before it ends the request's own server span and logs the request line. Nothing in between can see
the difference: the loop runs no other request's code before that (no await), so a client that reads the
metrics or the console after its response finds them updated, and log lines keep their order.

A task deferred outside any request, or after its request's deferred work already ran (e.g. from a
background task that inherited the request's context), runs at once.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable

log = logging.getLogger("skill_engine.telemetry")


class Deferred:
    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: list[Callable[[], None]] | None = []

    def add(self, task: Callable[[], None]) -> None:
        if self._tasks is None:
            _run(task)
        else:
            self._tasks.append(task)

    def run(self) -> None:
        """Runs what was deferred, in order; later `add`s run at once."""
        tasks, self._tasks = self._tasks, None
        for task in tasks or ():
            _run(task)


def _run(task: Callable[[], None]) -> None:
    try:
        task()
    except Exception:
        log.exception("work deferred until after a response failed")


_current: contextvars.ContextVar[Deferred | None] = contextvars.ContextVar(
    "skill_engine_after_response", default=None
)


def begin() -> tuple[Deferred, contextvars.Token[Deferred | None]]:
    deferred = Deferred()
    return deferred, _current.set(deferred)


def end(deferred: Deferred, token: contextvars.Token[Deferred | None]) -> None:
    _current.reset(token)
    deferred.run()


def after_response(task: Callable[[], None]) -> None:
    """Runs `task` once the current request's response has been sent (at once outside a request)."""
    deferred = _current.get()
    if deferred is None:
        _run(task)
    else:
        deferred.add(task)
