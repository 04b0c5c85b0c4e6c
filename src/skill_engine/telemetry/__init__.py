"""Observability of one engine: Prometheus metrics, OpenTelemetry traces and structured logs (engine-spec §6).

`Telemetry` bundles the engine's own metrics registry and tracer (never the process-global ones, so
several engines in one process stay independent). The HTTP middleware makes it the *current* telemetry of
each request; code deep inside (CSI drivers, the binding layer) reaches it with `current()` instead of
having it passed through every constructor. Worker threads inherit it because the runtime runs each
invocation in a copy of the request's context.

Hooks for other modules:
- `span(name, attributes)`: a child span of whatever is current (no-op when tracing is off).
- `genai.chat(...)`, `genai.complete(...)`, `genai.traced_stream(...)`, `genai.tools(...)`: one line in a
  CSI driver gives it GenAI-convention spans (see `csi/genai.py`).
- `outbound_headers()`: `traceparent`/`tracestate` for backends that take them (engine-spec §4.4).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from skill_engine.telemetry.executions import Execution, current_skill, executing
from skill_engine.telemetry.metrics import Metrics
from skill_engine.telemetry.recorder import ExecutionRecorder
from skill_engine.telemetry.tracing import Tracing

if TYPE_CHECKING:
    from skill_engine.config import Settings

__all__ = [
    "Metrics",
    "Telemetry",
    "Tracing",
    "current",
    "current_skill",
    "executing",
    "outbound_headers",
    "span",
]


@dataclass
class Telemetry:
    metrics: Metrics = field(default_factory=Metrics)
    tracing: Tracing = field(default_factory=Tracing.disabled)
    content_capture: bool = False
    """Record prompts and completions on inference spans (`OTEL_GEN_AI_CONTENT_CAPTURE`)."""
    recorder: ExecutionRecorder | None = None
    """The last executions with their spans, for the console (`CONSOLE_EXECUTIONS`, 0 turns it off)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Telemetry:
        recorder = ExecutionRecorder(settings.console_executions) if settings.console_executions else None
        return cls.create(
            settings.otel_endpoint,
            settings.otel_sampling_ratio,
            settings.otel_gen_ai_content_capture,
            recorder,
        )

    @classmethod
    def create(
        cls,
        endpoint: str | None,
        sampling_ratio: float,
        content_capture: bool,
        recorder: ExecutionRecorder | None,
    ) -> Telemetry:
        if recorder is not None:
            recorder.attach_logs()
        return cls(
            metrics=Metrics(),
            tracing=Tracing.from_endpoint(endpoint, sampling_ratio, recorder),
            content_capture=content_capture,
            recorder=recorder,
        )

    @contextlib.contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        *,
        end_on_exit: bool = True,
    ) -> Iterator[Span | None]:
        """A span under the current one, or nothing when tracing is off (cheap: one attribute check).
        With `end_on_exit=False` the caller ends it (`span.end()`), e.g. after the response was sent."""
        tracer = self.tracing.tracer
        if tracer is None:
            yield None
            return
        with tracer.start_as_current_span(name, attributes=attributes, end_on_exit=end_on_exit) as opened:
            yield opened

    def execution(self, namespace: str, name: str) -> Execution:
        """Starts timing a skill execution (call after a successful fetch)."""
        return Execution(self.metrics, self.span, namespace, name)

    def shutdown(self) -> None:
        self.metrics.stop()
        self.tracing.shutdown()


_DISABLED = Telemetry()
_current: contextvars.ContextVar[Telemetry] = contextvars.ContextVar("skill_engine_telemetry")


def current() -> Telemetry:
    """The telemetry of the request being served (a disabled one outside any request)."""
    return _current.get(_DISABLED)


def activate(telemetry: Telemetry) -> contextvars.Token[Telemetry]:
    return _current.set(telemetry)


def deactivate(token: contextvars.Token[Telemetry]) -> None:
    _current.reset(token)


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> AbstractContextManager[Span | None]:
    """A span of the current request's telemetry under the current span (nothing when tracing is off)."""
    return current().span(name, attributes)


def outbound_headers(headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Adds the current trace context to outgoing request headers (only when this engine traces).

    For backends that continue traces (engine-spec §4.4: Aleph Alpha inference, Document Index, IAM);
    the OpenAI-compatible backend, MCP servers and registries get none.
    """
    carrier: MutableMapping[str, str] = {} if headers is None else headers
    current().tracing.inject(carrier)
    return carrier
