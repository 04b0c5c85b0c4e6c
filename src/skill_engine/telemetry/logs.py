"""Logging set-up: `LOG_LEVEL` (an EnvFilter-like directive) and `LOG_FORMAT` (`text` or `json`).

`LOG_LEVEL=debug` (or `trace`) shows the engine's own debug lines while libraries stay at `info`, as
PhariaEngine rewrites it to `info,pharia_kernel=debug`. Directives name loggers too:
`LOG_LEVEL=warn,skill_engine.api=info` or `skill_engine::api=debug`. Every record gets the current trace
and span id when tracing is on; skill output records also carry `namespace` and `skill`.

Text lines: `<RFC 3339 UTC time> <LEVEL> <logger>: <message> key=value ...`.
JSON lines: `{"time", "level", "target", "message", ...fields}`, one object per line.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

from opentelemetry import trace

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}
ENGINE_LOGGER = "skill_engine"
FIELDS = (
    "namespace",
    "skill",
    "trace_id",
    "span_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "stream",
    "error",
    "worker",
)
"""`extra=` keys that formatters show; anything else passed as extra is ignored by the text format."""


def parse_directive(directive: str) -> tuple[int, int, dict[str, int]]:
    """(root, engine, per-logger levels) from e.g. `info`, `debug`, `warn,skill_engine.api=debug`."""
    root = logging.INFO
    engine: int | None = None
    targets: dict[str, int] = {}
    for part in directive.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, level = part.partition("=")
        if sep:
            value = LEVELS.get(level.strip().lower())
            if value is not None:
                targets[name.strip().replace("::", ".").replace("pharia_kernel", ENGINE_LOGGER)] = value
            continue
        value = LEVELS.get(name.lower())
        if value is None:
            continue
        if value == logging.DEBUG:
            engine = value  # only our own loggers: library debug output is noise
        else:
            root = value
    return root, engine if engine is not None else root, targets


class TraceFilter(logging.Filter):
    """Adds the current trace and span id (if any) to every record that does not carry them yet."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "trace_id", None) is None:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
        return True


def _time(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = [f"{k}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None) is not None]
        if fields:
            line += " " + " ".join(fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "target": record.name,
            "message": record.getMessage(),
        }
        for key in FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class WorkerFilter(logging.Filter):
    """Tags every record with the worker id (its process id) when several workers share the output."""

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        return True


def configure_logging(directive: str, log_format: str = "text", worker: str | None = None) -> int:
    """Installs one stdout handler on the root logger; returns the engine's effective level."""
    root_level, engine_level, targets = parse_directive(directive)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(TraceFilter())
    if worker is not None:
        handler.addFilter(WorkerFilter(worker))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(root_level)
    logging.getLogger(ENGINE_LOGGER).setLevel(engine_level)
    # httpx logs every request at INFO: a line per namespace file and interval, and per registry call.
    # Quieted unless the directive names it (e.g. `info,httpx=info`).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name, level in targets.items():
        logging.getLogger(name).setLevel(level)
    return engine_level
