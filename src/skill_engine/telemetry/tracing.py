"""OpenTelemetry tracing of one engine (engine-spec §6.1).

Export over OTLP: HTTP/protobuf when `OTEL_ENDPOINT` starts with `http://` or `https://` (an endpoint
without a path gets `/v1/traces`), gRPC otherwise (`host:port` or `grpc://host:port` in plaintext,
`grpcs://host:port` with TLS). The exporters read the standard `OTEL_EXPORTER_OTLP_TRACES_HEADERS` /
`OTEL_EXPORTER_OTLP_HEADERS` (e.g. Langfuse or Studio credentials) and `OTEL_BSP_*` batch settings.
Sampling is `ParentBased(TraceIdRatioBased(OTEL_SAMPLING_RATIO))`: an incoming `-01` parent is always
recorded, an incoming `-00` parent never, a new trace with the configured probability.

The provider belongs to the engine, not to the process (`opentelemetry.trace.set_tracer_provider` is never
called). Without an endpoint, `tracer` is None and every hook returns before doing any work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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


class Tracing:
    def __init__(self, provider: TracerProvider | None) -> None:
        self.provider = provider
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
    def from_endpoint(cls, endpoint: str | None, sampling_ratio: float) -> Tracing:
        if not endpoint:
            return cls.disabled()
        return cls.with_exporter(make_exporter(endpoint), sampling_ratio)

    @classmethod
    def with_exporter(cls, exporter: SpanExporter, sampling_ratio: float) -> Tracing:
        attributes: dict[str, str] = {"service.version": _version()}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = SERVICE_NAME
        provider = TracerProvider(
            resource=Resource.create(attributes),
            sampler=ParentBased(TraceIdRatioBased(validate_sampling_ratio(sampling_ratio))),
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def extract(self, headers: Mapping[str, str]) -> Context:
        """The context an incoming request continues (`traceparent`, `tracestate`, `baggage`)."""
        return self.propagator.extract(headers)

    def response_headers(self, ctx: Context) -> dict[str, str]:
        """`traceparent` (and a non-empty `tracestate`) naming the server span of a response."""
        carrier: dict[str, str] = {}
        self._response_propagator.inject(carrier, context=ctx)
        return carrier

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        if self.tracer is not None:
            self.propagator.inject(carrier)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()  # flushes what the batch processor still holds
            self.provider = None
            self.tracer = None


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
