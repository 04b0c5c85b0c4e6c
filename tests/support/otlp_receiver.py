"""A loopback OTLP/HTTP trace receiver: decodes `ExportTraceServiceRequest` protobufs into plain spans.

Serve `receiver.app` with `ThreadedServer` and point the engine's `OTEL_ENDPOINT` at its URL; the engine's
batch processor exports to `POST /v1/traces`. Request headers are kept to check
`OTEL_EXPORTER_OTLP_TRACES_HEADERS`.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind is not None else None


def _attributes(pairs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        result[pair.key] = _value(pair.value)
    return result


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    scope: str
    resource: dict[str, Any] = field(repr=False)

    @property
    def is_error(self) -> bool:
        return self.status_code == 2  # STATUS_CODE_ERROR


class OtlpReceiver:
    def __init__(self) -> None:
        self.url = ""
        """Set by whoever serves `app` (the base URL, without `/v1/traces`)."""
        self.spans: list[ReceivedSpan] = []
        self.headers: list[dict[str, str]] = []
        self.raw: list[bytes] = []
        """Every export as received (decompressed): events and all, for greps over everything."""
        self._lock = threading.Lock()
        self.logs: list[dict[str, Any]] = []
        """Log records (`POST /v1/logs`): event name, body and attributes of each."""
        self.app = Starlette(
            routes=[
                Route("/v1/traces", self.export, methods=["POST"]),
                Route("/v1/logs", self.export_logs, methods=["POST"]),
            ]
        )

    async def export_logs(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportLogsServiceRequest()
        message.ParseFromString(body)
        received = [
            {
                "event_name": record.event_name,
                "body": _value(record.body),
                "attributes": _attributes(record.attributes),
            }
            for resource_logs in message.resource_logs
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
        ]
        with self._lock:
            self.logs.extend(received)
        return Response(ExportLogsServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    async def export(self, request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        with self._lock:
            self.raw.append(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        received = []
        for resource_spans in message.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes=_attributes(span.attributes),
                            status_code=span.status.code,
                            scope=scope_spans.scope.name,
                            resource=resource,
                        )
                    )
        with self._lock:
            self.spans.extend(received)
            self.headers.append(dict(request.headers))
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for_trace(
        self, trace_id: str, names: set[str], timeout: float = 15.0
    ) -> dict[str, list[ReceivedSpan]]:
        """Spans of `trace_id` by name, once every name in `names` has arrived (batch export is async)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.trace(trace_id)
            by_name: dict[str, list[ReceivedSpan]] = {}
            for span in spans:
                by_name.setdefault(span.name, []).append(span)
            if names <= by_name.keys():
                return by_name
            if time.monotonic() > deadline:
                raise AssertionError(f"spans {names - by_name.keys()} of {trace_id} not received: {spans}")
            time.sleep(0.05)
