"""The last skill executions, kept in memory for the console (`/v1/console/executions`).

A `SpanProcessor` on the engine's own tracer provider, present even without `OTEL_ENDPOINT`: it sees the
same spans an OTLP backend would (so content capture applies alike) and keeps those of every trace that
holds a `skill_execution` span, once the trace's local root ends. Traces without one (listing skills,
health probes) are dropped at their root. Everything is bounded: `capacity` traces, `SPANS_PER_TRACE`
spans and `LOGS_PER_TRACE` skill log lines each, `OPEN_TRACES` traces still open. Telemetry observes and
never drives: nothing here is read on the request path.

Skill log lines (`skill stdout: ...`) arrive through a `logging.Handler` on `skill_engine.skill`, keyed by
the trace id the invocation logs them with.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

EXECUTION_SPAN = "skill_execution"
STATUS_ATTRIBUTE = "skill_engine.status"
"""Set on `skill_execution` spans that fail: `logic_error` or `runtime_error` (engine-spec §5.5)."""
ERROR_ATTRIBUTE = "skill_engine.error"
"""The error text the client received, on failed `skill_execution` spans."""
SPANS_PER_TRACE = 512
LOGS_PER_TRACE = 200
OPEN_TRACES = 1024
SKILL_LOGGER = "skill_engine.skill"


@dataclass
class _Trace:
    spans: list[ReadableSpan] = field(default_factory=list)
    dropped_spans: int = 0
    execution: ReadableSpan | None = None


@dataclass(frozen=True)
class LogLine:
    time: float
    level: str
    stream: str | None
    message: str


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    attributes = span.attributes or {}
    return {key: list(value) if isinstance(value, tuple) else value for key, value in attributes.items()}


class ExecutionRecorder(SpanProcessor):
    def __init__(self, capacity: int = 100) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._open: OrderedDict[int, _Trace] = OrderedDict()
        self._done: OrderedDict[int, _Trace] = OrderedDict()
        self._logs: OrderedDict[int, list[LogLine]] = OrderedDict()
        self.handler = _LogHandler(self)

    # -- SpanProcessor ------------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        trace_id = context.trace_id
        local_root = span.parent is None or span.parent.is_remote
        with self._lock:
            trace = self._open.get(trace_id)
            if trace is None:
                trace = self._open[trace_id] = _Trace()
                while len(self._open) > OPEN_TRACES:
                    self._open.popitem(last=False)
            if len(trace.spans) < SPANS_PER_TRACE:
                trace.spans.append(span)
            else:
                trace.dropped_spans += 1
            if span.name == EXECUTION_SPAN and trace.execution is None:
                trace.execution = span
            if not local_root:
                return
            del self._open[trace_id]
            if trace.execution is None:
                self._logs.pop(trace_id, None)
                return
            self._done[trace_id] = trace
            while len(self._done) > self.capacity:
                evicted, _ = self._done.popitem(last=False)
                self._logs.pop(evicted, None)

    def shutdown(self) -> None:
        logging.getLogger(SKILL_LOGGER).removeHandler(self.handler)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # -- skill log lines ----------------------------------------------------------------------------

    def attach_logs(self) -> None:
        logging.getLogger(SKILL_LOGGER).addHandler(self.handler)

    def add_log(self, trace_id: int, line: LogLine) -> None:
        with self._lock:
            lines = self._logs.get(trace_id)
            if lines is None:
                lines = self._logs[trace_id] = []
                while len(self._logs) > self.capacity + OPEN_TRACES:
                    self._logs.popitem(last=False)
            if len(lines) < LOGS_PER_TRACE:
                lines.append(line)

    # -- reading ------------------------------------------------------------------------------------

    def executions(
        self,
        namespace: str | None = None,
        skill: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Summaries, newest first, filtered by namespace, skill name and status."""
        with self._lock:
            traces = list(self._done.items())
        found: list[dict[str, Any]] = []
        for trace_id, trace in reversed(traces):
            summary = _summary(trace_id, trace)
            if namespace and summary["namespace"] != namespace:
                continue
            if skill and summary["skill"] != skill:
                continue
            if status and summary["status"] != status:
                continue
            found.append(summary)
            if limit is not None and len(found) >= limit:
                break
        return found

    def execution(self, trace_id: str) -> dict[str, Any] | None:
        """One execution with its spans (start offsets relative to the trace's first span) and log lines."""
        try:
            key = int(trace_id, 16)
        except ValueError:
            return None
        with self._lock:
            trace = self._done.get(key)
            logs = list(self._logs.get(key, ()))
        if trace is None:
            return None
        return {
            **_summary(key, trace),
            "spans": _spans(trace.spans),
            "dropped_spans": trace.dropped_spans,
            "logs": [
                {"time": line.time, "level": line.level, "stream": line.stream, "message": line.message}
                for line in logs
            ],
        }


def _summary(trace_id: int, trace: _Trace) -> dict[str, Any]:
    execution = trace.execution
    assert execution is not None
    attributes = execution.attributes or {}
    path = str(attributes.get("skill", "/"))
    namespace, _, name = path.partition("/")
    root = trace.spans[-1]
    start = min(s.start_time or 0 for s in trace.spans)
    end = max(s.end_time or 0 for s in trace.spans)
    status = "ok"
    error = None
    if execution.status.status_code is StatusCode.ERROR:
        status = str(attributes.get(STATUS_ATTRIBUTE, "runtime_error"))
        text = attributes.get(ERROR_ATTRIBUTE)
        error = str(text) if text is not None else _exception_message(execution)
    return {
        "trace_id": _hex(trace_id, 32),
        "namespace": namespace,
        "skill": name,
        "status": status,
        "error": error,
        "started_at": start / 1e9,
        "duration_ms": round((end - start) / 1e6, 3),
        "execution_ms": round(((execution.end_time or 0) - (execution.start_time or 0)) / 1e6, 3),
        "root": root.name,
        "spans": len(trace.spans),
    }


def _exception_message(span: ReadableSpan) -> str | None:
    for event in span.events:
        if event.name == "exception":
            message = event.attributes.get("exception.message") if event.attributes else None
            return str(message) if message is not None else None
    return None


def _spans(spans: Sequence[ReadableSpan]) -> list[dict[str, Any]]:
    start = min(s.start_time or 0 for s in spans)
    ordered = sorted(spans, key=lambda s: s.start_time or 0)
    result = []
    for span in ordered:
        assert span.context is not None
        parent = span.parent
        result.append(
            {
                "span_id": _hex(span.context.span_id, 16),
                "parent_id": _hex(parent.span_id, 16)
                if parent is not None and not parent.is_remote
                else None,
                "name": span.name,
                "kind": span.kind.name.lower(),
                "start_ms": round(((span.start_time or 0) - start) / 1e6, 3),
                "duration_ms": round(((span.end_time or 0) - (span.start_time or 0)) / 1e6, 3),
                "status": span.status.status_code.name.lower(),
                "attributes": _attributes(span),
                "events": [
                    {"name": e.name, "attributes": dict(e.attributes or {})}
                    for e in span.events
                    if e.name == "exception"
                ],
            }
        )
    return result


class _LogHandler(logging.Handler):
    """Collects skill output lines for the recorder; lines of unknown traces are ignored."""

    def __init__(self, recorder: ExecutionRecorder) -> None:
        super().__init__(logging.DEBUG)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        trace_id = getattr(record, "trace_id", None)
        if not isinstance(trace_id, str):
            return
        try:
            key = int(trace_id, 16)
            message = record.getMessage()
        except Exception:
            return
        stream = getattr(record, "stream", None)
        line = LogLine(record.created or time.time(), record.levelname, stream, message)
        self.recorder.add_log(key, line)
