"""Traces, metrics and logs of a running engine (engine-spec §6, checklist items 79-85).

Spans go to a loopback OTLP/HTTP receiver that decodes the protobufs; metrics are scraped from the engine's
`METRICS_ADDRESS`; logs are read from the engine's stdout. The traced engine samples with ratio 0, so only
an incoming sampled `traceparent` (`-01`) produces spans: that is the parent-based sampler at work.
"""

from __future__ import annotations

import gzip
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.aleph_alpha_server import AlephAlphaServer
from tests.support.engine import EngineProcess, engine_with_skills, run_engine_once, running
from tests.support.iam_server import IamServer
from tests.support.openai_server import OpenAIServer
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.servers import ThreadedServer

RUN_ROUTE = "/v1/skills/{namespace}/{name}/run"
STREAM_ROUTE = "/v1/skills/{namespace}/{name}/message-stream"
SPEC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250]
SERVER, CLIENT = 2, 3  # OTLP span kinds


def traced_engine(
    workdir: Path,
    skills: dict[str, Path],
    openai_url: str,
    compiled_cache: Path,
    **env: str,
) -> EngineProcess:
    return engine_with_skills(
        workdir,
        skills,
        {
            "OPENAI_INFERENCE__URL": openai_url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "NAMESPACES__MY_TEAM__NATIVE_TOOLS": '["add", "saboteur"]',
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # Compile at the first request, as PhariaEngine does: load_skill → download, compile in its trace.
            "PRECOMPILE_SKILLS": "false",
            "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
            **env,
        },
    )


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    streamer_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
    receiver: OtlpReceiver,
) -> Iterator[EngineProcess]:
    """Tracing to the receiver (ratio 0, content capture on), JSON logs at debug level."""
    process = traced_engine(
        tmp_path_factory.mktemp("engine-observability"),
        # `metered` and `traced-streamer` are only used by one test each: their counts and loads are theirs.
        {
            "probe": probe_wasm,
            "metered": probe_wasm,
            "streamer": streamer_wasm,
            "traced-streamer": streamer_wasm,
        },
        openai[1],
        compiled_cache,
        OTEL_ENDPOINT=receiver.url,
        OTEL_SAMPLING_RATIO="0",
        OTEL_GEN_AI_CONTENT_CAPTURE="true",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS="authorization=Basic dGVzdDp0ZXN0,x-studio-project=42",
        LOG_FORMAT="json",
        LOG_LEVEL="debug",
    )
    with running(process):
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        yield client


def traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}", trace_id, span_id


def scrape(engine: EngineProcess, path: str = "/metrics") -> dict[str, Any]:
    """Samples by (name, sorted labels) and the metric families' types."""
    text = httpx.get(engine.metrics_url.replace("/metrics", path), timeout=10).text
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return {"samples": samples, "types": types, "text": text}


def sample(scraped: dict[str, Any], metric: str, /, **labels: str) -> float | None:
    value: float | None = scraped["samples"].get((metric, tuple(sorted(labels.items()))))
    return value


def only(spans: dict[str, list[ReceivedSpan]], name: str) -> ReceivedSpan:
    assert len(spans[name]) == 1, spans[name]
    return spans[name][0]


# -- metrics ----------------------------------------------------------------------------------------


def test_execution_metrics_by_outcome(client: httpx.Client, engine: EngineProcess) -> None:
    def run(body: Any, skill: str = "metered") -> int:
        return client.post(f"/v1/skills/my-team/{skill}/run", json=body).status_code

    assert run({"mode": "echo", "payload": 1}) == 200
    assert run({"mode": "echo", "payload": 2}) == 200
    assert run({"mode": "raise"}) == 400  # the skill's own error
    assert run({"mode": "invalid-output"}) == 500  # output that is not JSON: still the skill's fault
    assert run({"mode": "chat", "model": "fail-500", "text": "x"}) == 503  # the inference backend failed
    assert run({"mode": "echo"}, skill="no-such-skill") == 400  # fetch fails: no execution is counted
    assert client.get("/v1/skills/my-team/metered/nope").status_code == 404
    assert client.get("/v1/skills/my-team/metered/run").status_code == 405

    scraped = scrape(engine, "/any/path")  # any GET path serves the metrics
    executions = "kernel_skill_execution_total"
    assert sample(scraped, executions, namespace="my-team", name="metered", status="ok") == 2
    assert sample(scraped, executions, namespace="my-team", name="metered", status="logic_error") == 2
    assert sample(scraped, executions, namespace="my-team", name="metered", status="runtime_error") == 1
    assert not any(key[0] == executions and ("name", "no-such-skill") in key[1] for key in scraped["samples"])
    durations = "kernel_skill_execution_duration_seconds_count"
    assert sample(scraped, durations, namespace="my-team", name="metered", status="ok") == 2
    fetches = "kernel_skill_fetch_duration_seconds_count"
    assert sample(scraped, fetches, namespace="my-team", name="metered") == 5
    # Label values only from configured skills: a caller cannot create series (issue 13).
    assert sample(scraped, fetches, namespace="my-team", name="no-such-skill") is None

    ok_run = {"method": "POST", "path": RUN_ROUTE, "status": "200"}
    assert (sample(scraped, "kernel_http_requests_total", **ok_run) or 0) >= 2
    for status in ("400", "500", "503"):
        assert (sample(scraped, "kernel_http_requests_total", **{**ok_run, "status": status}) or 0) >= 1
    statuses = {
        dict(key[1])["status"] for key in scraped["samples"] if key[0] == "kernel_http_requests_total"
    }
    assert not statuses & {"404", "405"}  # unmatched routes and methods are not counted
    buckets = sorted(
        float(dict(labels)["le"])
        for name, labels in scraped["samples"]
        if name == "kernel_http_requests_duration_seconds_bucket"
        and (("path", RUN_ROUTE) in labels)
        and ("status", "200") in labels
    )
    assert buckets == [*SPEC_BUCKETS, float("inf")]
    assert (sample(scraped, "kernel_csi_requests_total", function="chat") or 0) >= 1
    assert (sample(scraped, "kernel_skill_cache_items") or 0) >= 1
    assert sample(scraped, "kernel_skill_invocations_in_flight") == 0
    assert sample(scraped, "kernel_skill_invocations_queued") == 0
    assert scraped["types"]["kernel_skill_compile_duration_seconds"] == "histogram"
    assert "_created" not in scraped["text"]


def test_a_compressed_request_and_a_preflight_are_named_after_their_route(
    client: httpx.Client, engine: EngineProcess, receiver: OtlpReceiver
) -> None:
    """The route comes from the router, also for a body the decompression middleware decodes on its way
    there; a CORS preflight is answered before routing and still names its route (but is not counted:
    OPTIONS matches the path only)."""
    requests_total = "kernel_http_requests_total"
    ok_run = {"method": "POST", "path": RUN_ROUTE, "status": "200"}
    before = sample(scrape(engine), requests_total, **ok_run) or 0
    header, compressed_trace, _ = traceparent()
    response = client.post(
        "/v1/skills/my-team/probe/run",
        content=gzip.compress(b'{"mode": "echo", "payload": "zipped"}'),
        headers={"content-encoding": "gzip", "content-type": "application/json", "traceparent": header},
    )
    assert response.status_code == 200 and response.json() == {"result": "zipped"}
    header, preflight_trace, _ = traceparent()
    preflight = client.options(
        "/v1/skills/my-team/probe/run",
        headers={"origin": "http://ui.test", "access-control-request-method": "POST", "traceparent": header},
    )
    assert preflight.status_code == 200

    compressed = only(receiver.wait_for_trace(compressed_trace, {f"POST {RUN_ROUTE}"}), f"POST {RUN_ROUTE}")
    assert compressed.attributes["http.route"] == RUN_ROUTE
    answered = receiver.wait_for_trace(preflight_trace, {f"OPTIONS {RUN_ROUTE}"})
    assert only(answered, f"OPTIONS {RUN_ROUTE}").attributes["http.route"] == RUN_ROUTE
    scraped = scrape(engine)
    assert sample(scraped, requests_total, **ok_run) == before + 1
    assert not any(key[0] == requests_total and ("method", "OPTIONS") in key[1] for key in scraped["samples"])


def test_csi_requests_and_tokens_count_batch_size(client: httpx.Client, engine: EngineProcess) -> None:
    tokens = "kernel_gen_ai_tokens_total"
    skill = {"namespace": "my-team", "name": "probe", "model": "test-model"}
    before = scrape(engine)
    response = client.post(
        "/v1/skills/my-team/probe/run", json={"mode": "chat_concurrent", "n": 3, "text": "batch"}
    )
    assert response.status_code == 200
    after = scrape(engine)
    chats = [sample(s, "kernel_csi_requests_total", function="chat") or 0 for s in (before, after)]
    assert chats[1] == chats[0] + 3
    # The test backend reports 7 prompt and 3 completion tokens per chat.
    inputs = [sample(s, tokens, **skill, type="input") or 0 for s in (before, after)]
    outputs = [sample(s, tokens, **skill, type="output") or 0 for s in (before, after)]
    assert (inputs[1] - inputs[0], outputs[1] - outputs[0]) == (21, 9)

    # CSI over HTTP (the SDK's dev tooling) is counted the same way.
    params = {"model": "no-tokenizer", "max_tokens": 3, "overlap": 0}
    chunks = [{"text": "123456", "params": params, "character_offsets": True}] * 2
    assert client.post("/csi/v1/chunk_with_offsets", json=chunks).status_code == 200
    counted = sample(scrape(engine), "kernel_csi_requests_total", function="chunk") or 0
    assert counted - (sample(after, "kernel_csi_requests_total", function="chunk") or 0) == 2


# -- traces -----------------------------------------------------------------------------------------


def test_message_stream_of_an_uncached_skill_is_one_trace(
    client: httpx.Client, engine: EngineProcess, receiver: OtlpReceiver, openai: tuple[OpenAIServer, str]
) -> None:
    """engine-spec §6.1: server span → load_skill → {download, compile}, skill_execution → chat."""
    header, trace_id, parent_id = traceparent()
    response = client.post(
        "/v1/skills/my-team/traced-streamer/message-stream",
        json={"mode": "chat_stream", "text": "tell me"},
        headers={"traceparent": header},
        timeout=900,  # the first load of this skill may compile it: minutes on a slow, cold machine
    )
    assert response.status_code == 200 and "echo:" in response.text
    answered = response.headers["traceparent"].split("-")
    assert answered[1] == trace_id and answered[3] == "01" and answered[2] != parent_id

    spans = receiver.wait_for_trace(
        trace_id, {f"POST {STREAM_ROUTE}", "load_skill", "download", "compile", "skill_execution", "chat"}
    )
    server = only(spans, f"POST {STREAM_ROUTE}")
    assert server.parent_span_id == parent_id
    assert server.span_id == answered[2]
    assert server.kind == SERVER
    assert server.attributes["http.route"] == STREAM_ROUTE
    assert server.attributes["http.response.status_code"] == 200
    load = only(spans, "load_skill")
    assert load.parent_span_id == server.span_id
    assert only(spans, "download").parent_span_id == load.span_id
    assert only(spans, "compile").parent_span_id == load.span_id
    execution = only(spans, "skill_execution")
    assert execution.parent_span_id == server.span_id
    assert execution.attributes["skill"] == "my-team/traced-streamer"
    chat = only(spans, "chat")
    assert chat.parent_span_id == execution.span_id
    assert chat.kind == CLIENT
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "test-model"
    assert chat.attributes["gen_ai.request.max_tokens"] == 16
    assert chat.attributes["gen_ai.usage.input_tokens"] == 7
    assert chat.attributes["gen_ai.usage.output_tokens"] == 3
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert json.loads(chat.attributes["gen_ai.input.messages"]) == [{"role": "user", "content": "tell me"}]
    assert json.loads(chat.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "content": "echo: tell me"}
    ]
    assert server.resource["service.name"] == "pharia-kernel"
    assert server.scope == "pharia-kernel"
    # The OpenAI-compatible backend is not given trace headers (engine-spec §4.4).
    backend, _ = openai
    sent = [r for r in backend.requests if r["body"].get("messages", [{}])[-1].get("content") == "tell me"]
    assert sent and all("traceparent" not in r["headers"] for r in sent)
    # Token usage of streams is counted per skill too.
    streamed = {"namespace": "my-team", "name": "traced-streamer", "model": "test-model"}
    scraped = scrape(engine)
    assert sample(scraped, "kernel_gen_ai_tokens_total", **streamed, type="input") == 7
    assert sample(scraped, "kernel_gen_ai_tokens_total", **streamed, type="output") == 3
    # OTEL_EXPORTER_OTLP_TRACES_HEADERS reaches the collector.
    assert any(
        h.get("authorization") == "Basic dGVzdDp0ZXN0" and h.get("x-studio-project") == "42"
        for h in receiver.headers
    )


def test_chat_span_of_a_run_with_content(client: httpx.Client, receiver: OtlpReceiver) -> None:
    header, trace_id, _ = traceparent()
    response = client.post(
        "/v1/skills/my-team/probe/run",
        json={"mode": "chat", "text": "hello there", "n": 5},
        headers={"traceparent": header},
    )
    assert response.status_code == 200
    spans = receiver.wait_for_trace(trace_id, {f"POST {RUN_ROUTE}", "skill_execution", "chat"})
    chat = only(spans, "chat")
    assert chat.parent_span_id == only(spans, "skill_execution").span_id
    assert chat.attributes["gen_ai.request.max_tokens"] == 5
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert json.loads(chat.attributes["gen_ai.output.messages"])[0]["content"] == "echo: hello there"


def test_batches_and_tools_get_a_concurrent_parent(client: httpx.Client, receiver: OtlpReceiver) -> None:
    header, trace_id, _ = traceparent()
    response = client.post(
        "/v1/skills/my-team/probe/run",
        json={"mode": "chat_concurrent", "n": 2, "text": "pair"},
        headers={"traceparent": header},
    )
    assert response.status_code == 200
    spans = receiver.wait_for_trace(trace_id, {"chat_concurrent", "chat"})
    parent = only(spans, "chat_concurrent")
    assert parent.attributes["requests"] == 2
    assert parent.parent_span_id == only(spans, "skill_execution").span_id
    assert len(spans["chat"]) == 2 and all(s.parent_span_id == parent.span_id for s in spans["chat"])

    header, trace_id, _ = traceparent()
    response = client.post(
        "/v1/skills/my-team/streamer/message-stream", json={"mode": "tool"}, headers={"traceparent": header}
    )
    assert response.status_code == 200
    spans = receiver.wait_for_trace(trace_id, {"invoke_tool_concurrent", "invoke_tool"})
    assert only(spans, "invoke_tool_concurrent").attributes["requests"] == 2
    tools = {s.attributes["tool_name"]: s for s in spans["invoke_tool"]}
    assert set(tools) == {"add", "saboteur"}
    assert tools["add"].attributes["gen_ai.operation.name"] == "execute_tool"
    assert not tools["add"].is_error and tools["saboteur"].is_error


def test_every_csi_function_gets_its_span(client: httpx.Client, receiver: OtlpReceiver) -> None:
    """chunk, select_language, document, document_metadata and list_tools spans (§6.1), via CSI over HTTP."""
    header, trace_id, _ = traceparent()
    params = {"model": "none", "max_tokens": 4, "overlap": 0}
    chunked = client.post(
        "/csi/v1/chunk",
        json=[{"text": "one two three", "params": params}, {"text": "four", "params": params}],
        headers={"traceparent": header},
    )
    assert chunked.status_code == 200
    spans = receiver.wait_for_trace(trace_id, {"chunk_concurrent", "chunk"})
    assert only(spans, "chunk_concurrent").attributes["requests"] == 2
    assert sorted(s.attributes["text_len"] for s in spans["chunk"]) == [4, 13]
    assert all(s.attributes["max_tokens"] == 4 for s in spans["chunk"])

    header, trace_id, _ = traceparent()
    body = [{"text": "Das ist ein deutscher Satz.", "languages": ["eng", "deu"]}]
    selected = client.post("/csi/v1/select_language", json=body, headers={"traceparent": header})
    assert selected.json() == ["deu"]
    span = only(receiver.wait_for_trace(trace_id, {"select_language"}), "select_language")
    assert span.attributes["languages"] == ["eng", "deu"] and span.attributes["text_len"] == 27

    header, trace_id, _ = traceparent()
    path = {"namespace": "docs", "collection": "papers", "name": "absent"}
    missing = client.post("/csi/v1/document_metadata", json=[path], headers={"traceparent": header})
    assert missing.status_code == 500
    span = only(receiver.wait_for_trace(trace_id, {"document_metadata"}), "document_metadata")
    assert span.attributes["name"] == "absent" and span.is_error

    header, trace_id, _ = traceparent()
    tools = client.post("/csi/v1/list_tools", json={"namespace": "my-team"}, headers={"traceparent": header})
    assert [t["name"] for t in tools.json()] == ["add", "saboteur"]
    assert only(receiver.wait_for_trace(trace_id, {"list_tools"}), "list_tools").attributes["namespace"] == (
        "my-team"
    )


def test_unsampled_parent_is_not_recorded(client: httpx.Client, receiver: OtlpReceiver) -> None:
    unsampled, unsampled_id, _ = traceparent(sampled=False)
    response = client.post(
        "/v1/skills/my-team/probe/run", json={"mode": "echo"}, headers={"traceparent": unsampled}
    )
    assert response.status_code == 200
    answered = response.headers["traceparent"].split("-")
    assert answered[1] == unsampled_id and answered[3] == "00"
    # A sampled request after it: once its spans arrived, the unsampled one would have too.
    sampled, sampled_id, _ = traceparent()
    client.post("/v1/skills/my-team/probe/run", json={"mode": "echo"}, headers={"traceparent": sampled})
    receiver.wait_for_trace(sampled_id, {f"POST {RUN_ROUTE}", "skill_execution"})
    assert receiver.trace(unsampled_id) == []


def test_failed_execution_marks_its_span(client: httpx.Client, receiver: OtlpReceiver) -> None:
    header, trace_id, _ = traceparent()
    response = client.post(
        "/v1/skills/my-team/probe/run",
        json={"mode": "chat", "model": "fail-500", "text": "x"},
        headers={"traceparent": header},
    )
    assert response.status_code == 503
    spans = receiver.wait_for_trace(trace_id, {f"POST {RUN_ROUTE}", "skill_execution", "chat"})
    assert only(spans, "chat").is_error
    assert only(spans, "skill_execution").is_error
    assert only(spans, f"POST {RUN_ROUTE}").is_error


# -- logs -------------------------------------------------------------------------------------------


def json_logs(engine: EngineProcess) -> list[dict[str, Any]]:
    lines = []
    for line in engine.logs().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def wait_for_log(engine: EngineProcess, predicate: Any, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for entry in json_logs(engine):
            if predicate(entry):
                return entry
        if time.monotonic() > deadline:
            raise AssertionError(f"no such log line in:\n{engine.logs()[-4000:]}")
        time.sleep(0.1)


def test_json_logs_with_skill_output_and_trace_ids(client: httpx.Client, engine: EngineProcess) -> None:
    header, trace_id, _ = traceparent()
    response = client.post(
        "/v1/skills/my-team/probe/run",
        json={"mode": "print", "text": "greetings from the guest", "n": 2},
        headers={"traceparent": header},
    )
    assert response.status_code == 200
    output = wait_for_log(engine, lambda e: "greetings from the guest 1" in e["message"])
    assert output["namespace"] == "my-team"
    assert output["skill"] == "probe"
    assert output["trace_id"] == trace_id
    assert output["stream"] == "stdout"
    request = wait_for_log(
        engine, lambda e: e.get("path") == "/v1/skills/my-team/probe/run" and e.get("trace_id") == trace_id
    )
    assert request["status"] == 200
    assert request["method"] == "POST"
    assert request["duration_ms"] > 0
    assert request["level"] == "INFO"
    success = wait_for_log(
        engine, lambda e: e["message"] == "Skill executed successfully" and e.get("trace_id") == trace_id
    )
    assert success["skill"] == "probe" and success["status"] == "ok"
    # Every line is JSON; LOG_LEVEL=debug shows the engine's debug lines (health probes log at debug).
    assert all(line.startswith("{") for line in engine.logs().splitlines() if line.strip())
    assert any(e["level"] == "DEBUG" and e.get("path") == "/health" for e in json_logs(engine))


# -- a second engine: no content capture, sampling ratio 1, text logs at info ------------------------


def test_content_is_not_captured_by_default(
    tmp_path: Path,
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
    receiver: OtlpReceiver,
) -> None:
    with running(
        traced_engine(
            tmp_path,
            {"probe": probe_wasm},
            openai[1],
            compiled_cache,
            OTEL_ENDPOINT=f"{receiver.url}/v1/traces",
            OTEL_SAMPLING_RATIO="1.0",
            NAMESPACES__MY_TEAM__NATIVE_TOOLS='["execute_python"]',
        )
    ) as process:
        response = httpx.post(
            f"{process.url}/v1/skills/my-team/probe/run", json={"mode": "chat", "text": "secret"}, timeout=120
        )
        assert response.status_code == 200
        trace_id = response.headers["traceparent"].split("-")[1]  # a new, sampled trace (ratio 1)
        assert int(response.headers["traceparent"].split("-")[3], 16) & 1  # sampled (0x02: random id)
        spans = receiver.wait_for_trace(trace_id, {f"POST {RUN_ROUTE}", "skill_execution", "chat"})
        chat = only(spans, "chat")
        assert only(spans, f"POST {RUN_ROUTE}").parent_span_id == ""
        assert chat.attributes["gen_ai.request.model"] == "test-model"
        assert chat.attributes["gen_ai.usage.output_tokens"] == 3
        assert "gen_ai.input.messages" not in chat.attributes
        assert "gen_ai.output.messages" not in chat.attributes
        assert not any("secret" in json.dumps(s.attributes) for s in receiver.trace(trace_id))

        # A code execution: its span says which tool ran and how it ended, never the code or its output.
        header, trace_id, _ = traceparent()
        code = {"name": "code", "value": json.dumps('print("secret-out")\nresult = "secret-result"')}
        body = {"namespace": "my-team", "requests": [{"name": "execute_python", "arguments": [code]}]}
        executed = httpx.post(
            f"{process.url}/csi/v1/invoke_tool", json=body, headers={"traceparent": header}, timeout=1200
        )
        assert executed.status_code == 200, executed.text
        assert "secret-result" in executed.text  # the caller gets the output; the trace does not
        execution = only(receiver.wait_for_trace(trace_id, {"code_execution"}), "code_execution")
        assert execution.attributes["gen_ai.tool.name"] == "execute_python"
        assert "gen_ai.tool.call.arguments" not in execution.attributes
        assert "gen_ai.tool.call.result" not in execution.attributes
        assert not any("secret" in json.dumps(s.attributes) for s in receiver.trace(trace_id))
    logs = process.logs()
    assert "POST /v1/skills/my-team/probe/run 200" in logs  # text format, one line per request
    assert "GET /health" not in logs  # a debug line, hidden at the default level


def test_invalid_sampling_ratio_fails_start_up(tmp_path: Path) -> None:
    result = run_engine_once(tmp_path, {"OTEL_SAMPLING_RATIO": "1.1", "OTEL_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode != 0
    assert "otel_sampling_ratio must be between 0.0 and 1.0 inclusive" in result.stderr


# -- Aleph Alpha continues the trace (engine-spec §4.4) ----------------------------------------------


def test_aleph_alpha_calls_carry_the_trace_context(
    tmp_path: Path,
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
    aleph_alpha: AlephAlphaServer,
    receiver: OtlpReceiver,
) -> None:
    with running(
        traced_engine(
            tmp_path,
            {"probe": probe_wasm},
            openai[1],
            compiled_cache,
            INFERENCE_URL=aleph_alpha.url,
            OTEL_ENDPOINT=receiver.url,
            OTEL_SAMPLING_RATIO="0",
        )
    ) as process:
        url = f"{process.url}/v1/skills/my-team/probe/run"
        auth = {"authorization": "Bearer user-token"}
        header, trace_id, _ = traceparent()
        response = httpx.post(
            url,
            json={"mode": "complete", "text": "traced prompt"},
            headers={**auth, "traceparent": header},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        completion = only(receiver.wait_for_trace(trace_id, {"text_completion"}), "text_completion")
        assert completion.attributes["gen_ai.provider.name"] == "aleph_alpha"
        assert completion.attributes["gen_ai.operation.name"] == "text_completion"
        sent = [r for r in aleph_alpha.requests if r["path"] == "/complete"]
        assert sent[-1]["headers"]["traceparent"] == f"00-{trace_id}-{completion.span_id}-01"

        header, trace_id, _ = traceparent()
        response = httpx.post(
            url,
            json={"mode": "chat", "text": "traced chat"},
            headers={**auth, "traceparent": header},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        chat = only(receiver.wait_for_trace(trace_id, {"chat"}), "chat")
        chats = [r for r in aleph_alpha.requests if r["path"].endswith("/chat/completions")]
        assert chats[-1]["headers"]["traceparent"] == f"00-{trace_id}-{chat.span_id}-01"

        # An unsampled caller: the backend still learns the trace id, flagged not sampled.
        header, trace_id, _ = traceparent(sampled=False)
        httpx.post(
            url,
            json={"mode": "complete", "text": "quiet"},
            headers={**auth, "traceparent": header},
            timeout=120,
        )
        sent = [r for r in aleph_alpha.requests if r["path"] == "/complete"]
        assert sent[-1]["headers"]["traceparent"].startswith(f"00-{trace_id}-")
        assert sent[-1]["headers"]["traceparent"].endswith("-00")


def test_permission_check_is_a_span_and_the_iam_continues_the_trace(
    tmp_path: Path,
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
    receiver: OtlpReceiver,
) -> None:
    iam = IamServer()
    iam_server = ThreadedServer(iam.app).start()
    try:
        with running(
            traced_engine(
                tmp_path,
                {"probe": probe_wasm},
                openai[1],
                compiled_cache,
                AUTHORIZATION_URL=iam_server.url,
                OTEL_ENDPOINT=receiver.url,
                OTEL_SAMPLING_RATIO="0",
            )
        ) as process:
            header, trace_id, _ = traceparent()
            response = httpx.post(
                f"{process.url}/v1/skills/my-team/probe/run",
                json={"mode": "echo"},
                headers={"authorization": "Bearer good-observer", "traceparent": header},
                timeout=120,
            )
            assert response.status_code == 200, response.text
            spans = receiver.wait_for_trace(trace_id, {f"POST {RUN_ROUTE}", "check_permissions"})
            check = only(spans, "check_permissions")
            assert check.parent_span_id == only(spans, f"POST {RUN_ROUTE}").span_id
            assert iam.requests[-1]["headers"]["traceparent"] == f"00-{trace_id}-{check.span_id}-01"
    finally:
        iam_server.stop()
