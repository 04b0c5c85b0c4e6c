"""Telemetry configuration: sampling-ratio validation, exporter choice, log directives and formats."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

from skill_engine.config import ConfigError, load_settings
from skill_engine.telemetry.logs import JsonFormatter, TextFormatter, parse_directive
from skill_engine.telemetry.tracing import http_traces_url, make_exporter

RATIO_ERROR = "otel_sampling_ratio must be between 0.0 and 1.0 inclusive"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("OTEL_", "LOG_", "NAMESPACES__", "OPENAI_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_telemetry_defaults() -> None:
    settings = load_settings()
    assert settings.metrics_address == "0.0.0.0:9000"
    assert settings.otel_endpoint is None
    assert settings.otel_sampling_ratio == 0.1
    assert settings.otel_gen_ai_content_capture is False
    assert settings.log_level == "info"
    assert settings.log_format == "text"


@pytest.mark.parametrize("ratio", ["1.1", "-0.1", "nan", "2"])
def test_sampling_ratio_out_of_range_is_a_start_up_error(monkeypatch: pytest.MonkeyPatch, ratio: str) -> None:
    monkeypatch.setenv("OTEL_SAMPLING_RATIO", ratio)
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert RATIO_ERROR in str(error.value)
    assert "OTEL_SAMPLING_RATIO" in str(error.value)


@pytest.mark.parametrize("ratio", ["0", "0.0", "0.5", "1", "1.0"])
def test_sampling_ratio_bounds_are_inclusive(monkeypatch: pytest.MonkeyPatch, ratio: str) -> None:
    monkeypatch.setenv("OTEL_SAMPLING_RATIO", ratio)
    assert load_settings().otel_sampling_ratio == float(ratio)


def test_empty_endpoint_is_unset_and_toml_keys_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config.toml").write_text(
        'otel-sampling-ratio = 0.25\notel-gen-ai-content-capture = true\nlog-format = "JSON"\n'
    )
    monkeypatch.setenv("OTEL_ENDPOINT", "")
    settings = load_settings()
    assert settings.otel_endpoint is None
    assert settings.otel_sampling_ratio == 0.25
    assert settings.otel_gen_ai_content_capture is True
    assert settings.log_format == "json"


def test_unknown_log_format_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings()


def test_exporter_follows_the_endpoint_scheme() -> None:
    assert isinstance(make_exporter("http://127.0.0.1:4318"), HttpExporter)
    assert isinstance(make_exporter("https://collector.example:4318/v1/traces"), HttpExporter)
    assert isinstance(make_exporter("127.0.0.1:4317"), GrpcExporter)
    assert http_traces_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert http_traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert http_traces_url("https://cloud.langfuse.com/api/public/otel/v1/traces") == (
        "https://cloud.langfuse.com/api/public/otel/v1/traces"
    )


def test_log_directives() -> None:
    assert parse_directive("info") == (logging.INFO, logging.INFO, {})
    # debug/trace: our own loggers only; libraries stay at info (PhariaEngine: info,pharia_kernel=debug)
    assert parse_directive("debug") == (logging.INFO, logging.DEBUG, {})
    assert parse_directive("TRACE") == (logging.INFO, logging.DEBUG, {})
    assert parse_directive("warn,skill_engine::api=debug,pharia_kernel=error") == (
        logging.WARNING,
        logging.WARNING,
        {"skill_engine.api": logging.DEBUG, "skill_engine": logging.ERROR},
    )
    assert parse_directive("nonsense")[0] == logging.INFO


def test_formats_carry_fields() -> None:
    record = logging.LogRecord(
        "skill_engine.skill", logging.INFO, __file__, 1, "skill %s: %s", ("stdout", "hi"), None
    )
    record.namespace, record.skill, record.trace_id = "team", "greet", "ab" * 16
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "skill stdout: hi"
    assert entry["level"] == "INFO" and entry["target"] == "skill_engine.skill"
    assert (entry["namespace"], entry["skill"], entry["trace_id"]) == ("team", "greet", "ab" * 16)
    assert entry["time"].endswith("Z")
    text = TextFormatter().format(record)
    assert text.endswith(
        "INFO skill_engine.skill: skill stdout: hi namespace=team skill=greet trace_id=" + "ab" * 16
    )


def test_dashboards_query_only_metrics_the_engine_exports() -> None:
    import re

    from skill_engine.telemetry.metrics import Metrics

    exported = set()
    for family in Metrics().registry.collect():
        suffixes = ("_bucket", "_sum", "_count") if family.type == "histogram" else ("",)
        name = family.name + ("_total" if family.type == "counter" else "")
        exported |= {name + suffix for suffix in suffixes}
    dashboards = Path(__file__).resolve().parents[2] / "dashboards"
    queried: set[str] = set()
    for path in dashboards.glob("*.json"):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                queried |= set(re.findall(r"kernel_[a-z_]+", target["expr"]))
    assert len(queried) >= 10
    assert queried <= exported, queried - exported
