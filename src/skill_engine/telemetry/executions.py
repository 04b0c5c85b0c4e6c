"""One skill execution after a successful fetch: its `skill_execution` span, metrics and outcome log line.

Status (engine-spec §5.5): `ok`, `logic_error` (the skill's fault: its error, bad output, a misused
message stream) or `runtime_error` (ours: load, CSI driver, trap, timeout). An execution abandoned because
the client went away is not counted, as in PhariaEngine.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from skill_engine.errors import ExecutionError
from skill_engine.telemetry.after_response import after_response
from skill_engine.telemetry.metrics import Metrics
from skill_engine.telemetry.recorder import ERROR_ATTRIBUTE, STATUS_ATTRIBUTE

log = logging.getLogger("skill_engine.execution")


class OpenSpan(Protocol):
    def __call__(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None, *, end_on_exit: bool = True
    ) -> AbstractContextManager[Span | None]: ...


_skill: contextvars.ContextVar[tuple[str, str]] = contextvars.ContextVar("skill_engine_skill")


def current_skill() -> tuple[str, str]:
    """(namespace, name) of the skill executing in this context; empty strings outside an execution."""
    return _skill.get(("", ""))


@contextlib.contextmanager
def executing(namespace: str, name: str) -> Iterator[None]:
    token = _skill.set((namespace, name))
    try:
        yield
    finally:
        _skill.reset(token)


def metric_status(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, ExecutionError):
        return error.metric_status
    return "runtime_error"


def _level(error: BaseException) -> int:
    status = error.status if isinstance(error, ExecutionError) else 503
    if status >= 503:
        return logging.ERROR
    if status >= 500:
        return logging.WARNING
    return logging.INFO


class Execution:
    def __init__(self, metrics: Metrics, open_span: OpenSpan, namespace: str, name: str) -> None:
        self.metrics = metrics
        self.open_span = open_span
        self.namespace = namespace
        self.name = name
        self.started = time.perf_counter()
        self.error: BaseException | None = None
        self.finished = False

    @contextlib.contextmanager
    def span(self, end_on_exit: bool = True) -> Iterator[Span | None]:
        with (
            executing(self.namespace, self.name),
            self.open_span(
                "skill_execution", {"skill": f"{self.namespace}/{self.name}"}, end_on_exit=end_on_exit
            ) as span,
        ):
            try:
                yield span
            except BaseException as e:
                if span is not None and not isinstance(e, asyncio.CancelledError):
                    # What the console shows: the status of the metrics and the client's error text.
                    span.set_attribute(STATUS_ATTRIBUTE, metric_status(e))
                    if isinstance(e, ExecutionError):
                        span.set_attribute(ERROR_ATTRIBUTE, e.message)
                raise

    def finish(self, error: BaseException | None = None, ended: float | None = None) -> None:
        """Counts the execution once (as ended at `ended`, a `perf_counter` time; default now); a
        cancellation (client gone) is not an outcome."""
        if self.finished or isinstance(error, asyncio.CancelledError):
            return
        self.finished = True
        status = metric_status(error)
        elapsed = (time.perf_counter() if ended is None else ended) - self.started
        metrics = self.metrics
        metrics.executions_child(self.namespace, self.name, status).inc()
        metrics.execution_duration_child(self.namespace, self.name, status).observe(elapsed)
        fields = {"namespace": self.namespace, "skill": self.name, "status": status}
        if error is None:
            log.info("Skill executed successfully", extra=fields)
        else:
            text = error.message if isinstance(error, ExecutionError) else repr(error)
            log.log(_level(error), "Skill invocation failed", extra={**fields, "error": text})

    @contextlib.contextmanager
    def record(self, defer: bool = False) -> Iterator[None]:
        """Span and outcome around a whole execution (the `/run` route).

        With `defer`, a successful execution's span end and outcome (metrics, log line) happen once the
        response has been sent (telemetry/after_response.py), with the end time taken here: the client
        does not wait for them, and what they record is the same. Failures are recorded at once.
        """
        if not defer:
            try:
                with self.span():
                    yield
            except BaseException as e:
                self.finish(e)
                raise
            self.finish()
            return
        opened: Span | None = None
        try:
            with self.span(end_on_exit=False) as opened:
                yield
        except BaseException as e:
            if opened is not None:
                opened.end()
            self.finish(e)
            raise
        ended, end_time = time.perf_counter(), time.time_ns()
        span = opened

        def done() -> None:
            if span is not None:
                span.end(end_time)
            self.finish(None, ended)

        after_response(done)
