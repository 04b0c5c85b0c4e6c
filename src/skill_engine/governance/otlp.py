"""Audit records as OTLP log records, when `OTEL_ENDPOINT` is configured (same endpoint as traces).

Each record becomes one log record with event name `skill_engine.audit`, the record's fields as
attributes (lists of names as string arrays, nested values as JSON), exported in batches off the loop.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

EVENT_NAME = "skill_engine.audit"


def _exporter(endpoint: str) -> LogRecordExporter:
    if endpoint.startswith(("http://", "https://")):
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

        parts = urlsplit(endpoint)
        url = urlunsplit(parts._replace(path="/v1/logs")) if parts.path in ("", "/") else endpoint
        return HttpExporter(endpoint=url)
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter

    if endpoint.startswith("grpcs://"):
        return GrpcExporter(endpoint=endpoint.removeprefix("grpcs://"), insecure=False)
    return GrpcExporter(endpoint=endpoint.removeprefix("grpc://"), insecure=True)


def _attribute(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


class OtlpAudit:
    def __init__(self, endpoint: str) -> None:
        self.provider = LoggerProvider(resource=Resource.create({"service.name": "skill-engine"}))
        self.provider.add_log_record_processor(BatchLogRecordProcessor(_exporter(endpoint)))
        self.logger = self.provider.get_logger("skill_engine.audit")

    def __call__(self, record: dict[str, Any]) -> None:
        attributes = {f"audit.{k}": _attribute(v) for k, v in record.items() if v is not None}
        self.logger.emit(
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=f"{record.get('kind')} {record.get('namespace')}/{record.get('skill')}",
            attributes=attributes,
            event_name=EVENT_NAME,
        )

    def shutdown(self) -> None:
        self.provider.shutdown()
