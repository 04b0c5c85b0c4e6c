"""OpenTelemetry tracing of one engine (engine-spec §6.1).

Export over OTLP: HTTP/protobuf when `OTEL_ENDPOINT` starts with `http://` or `https://` (an endpoint
without a path gets `/v1/traces`), gRPC otherwise (`host:port` or `grpc://host:port` in plaintext,
`grpcs://host:port` with TLS). The exporters read the standard `OTEL_EXPORTER_OTLP_TRACES_HEADERS` /
`OTEL_EXPORTER_OTLP_HEADERS` (e.g. Langfuse or Studio credentials) and `OTEL_BSP_*` batch settings.
Sampling is `ParentBased(TraceIdRatioBased(OTEL_SAMPLING_RATIO))`: an incoming `-01` parent is always
recorded, an incoming `-00` parent never, a new trace with the configured probability.

The provider belongs to the engine, not to the process (`opentelemetry.trace.set_tracer_provider` is never
called). Without an endpoint and without the console's execution recorder (`CONSOLE_EXECUTIONS=0`),
`tracer` is None and every hook returns before doing any work. With the recorder, spans are always
recorded locally (`RecordLocally`: what the ratio does not sample is still recorded, never exported), but
only an exporting engine continues incoming trace context and sends `traceparent` (in responses and to
backends), so an engine without `OTEL_ENDPOINT` looks the same from outside.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from skill_engine.config import validate_sampling_ratio

log = logging.getLogger("skill_engine.tracing")

SERVICE_NAME = "pharia-kernel"
"""PhariaEngine's service and scope name, kept so existing trace queries and Studio views still match."""


def _version() -> str:
    try:
        return version("skill-engine")
    except PackageNotFoundError:
        return "0"


def http_traces_url(endpoint: str) -> str:
    """`http://collector:4318` ⇒ `http://collector:4318/v1/traces`; a URL with a path is used as given."""
    parts = urlsplit(endpoint)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path="/v1/traces"))
    return endpoint


def make_exporter(endpoint: str) -> SpanExporter:
    if endpoint.startswith(("http://", "https://")):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter(endpoint=http_traces_url(endpoint))
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    if endpoint.startswith("grpcs://"):
        return GrpcExporter(endpoint=endpoint.removeprefix("grpcs://"), insecure=False)
    return GrpcExporter(endpoint=endpoint.removeprefix("grpc://"), insecure=True)


class RecordLocally(Sampler):
    """`inner`'s decision, except that a dropped span is still recorded (for the console, not exported)."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        result = self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )
        if result.decision is Decision.DROP:
            # A dropped result carries no attributes; the span's own (set at start) must survive.
            return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"RecordLocally{{{self.inner.get_description()}}}"


class Tracing:
    def __init__(
        self, provider: TracerProvider | None, exporting: bool = False, recorder: SpanProcessor | None = None
    ) -> None:
        self.provider = provider
        self.exporting = exporting and provider is not None
        """Spans leave the engine (OTLP): only then is trace context continued and propagated."""
        self.recorder = recorder
        self.tracer: Tracer | None = (
            provider.get_tracer(SERVICE_NAME, _version()) if provider is not None else None
        )
        # W3C TraceContext + Baggage, as PhariaEngine installs them (only with an endpoint).
        self.propagator = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
        self._response_propagator = TraceContextTextMapPropagator()

    @classmethod
    def disabled(cls) -> Tracing:
        return cls(None)

    @classmethod
    def from_endpoint(
        cls, endpoint: str | None, sampling_ratio: float, recorder: SpanProcessor | None = None
    ) -> Tracing:
        if not endpoint:
            return cls.recording_only(recorder) if recorder is not None else cls.disabled()
        return cls.with_exporter(make_exporter(endpoint), sampling_ratio, recorder)

    @classmethod
    def with_exporter(
        cls, exporter: SpanExporter, sampling_ratio: float, recorder: SpanProcessor | None = None
    ) -> Tracing:
        sampler: Sampler = ParentBased(TraceIdRatioBased(validate_sampling_ratio(sampling_ratio)))
        provider = _provider(RecordLocally(sampler) if recorder is not None else sampler)
        provider.add_span_processor(BatchSpanProcessor(exporter))  # exports sampled spans only
        if recorder is not None:
            provider.add_span_processor(recorder)
        return cls(provider, exporting=True, recorder=recorder)

    @classmethod
    def recording_only(cls, recorder: SpanProcessor) -> Tracing:
        """No export: every span is recorded for `recorder` (the console's executions)."""
        provider = _provider(RecordLocally(ParentBased(TraceIdRatioBased(0.0))))
        provider.add_span_processor(recorder)
        return cls(provider, exporting=False, recorder=recorder)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def extract(self, headers: Mapping[str, str]) -> Context:
        """The context an incoming request continues (`traceparent`, `tracestate`, `baggage`); a fresh
        one when nothing is exported."""
        if not self.exporting:
            return Context()
        return self.propagator.extract(headers)

    def response_headers(self, ctx: Context) -> dict[str, str]:
        """`traceparent` (and a non-empty `tracestate`) naming the server span of a response (none when
        nothing is exported)."""
        carrier: dict[str, str] = {}
        if self.exporting:
            self._response_propagator.inject(carrier, context=ctx)
        return carrier

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        if self.tracer is not None and self.exporting:
            self.propagator.inject(carrier)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes what the batch processor still holds
            self.provider = None
            self.tracer = None
            self.exporting = False


def _provider(sampler: Sampler) -> TracerProvider:
    attributes: dict[str, str] = {"service.version": _version()}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = SERVICE_NAME
    return TracerProvider(resource=Resource.create(attributes), sampler=sampler)


def current_trace_id() -> str | None:
    """The 32-hex trace id of the current span, for logs; None outside a (valid) trace."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


def attach(ctx: Context) -> object:
    return otel_context.attach(ctx)


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]
