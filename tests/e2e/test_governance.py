"""Governance through real HTTP (docs/governance.md): namespace policies for models, collections and tools
through `/run`, `/message-stream` and `/csi/*`; the audit trail with a real IAM answering a `sub`; the
`skill-engine audit` query; CPU-time limits; token budgets. SDK-built skills, loopback backends only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_stream import parse_sse
from tests.support.engine import EngineProcess, WarmUp, running
from tests.support.openai_server import OpenAIServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.skills import build_skill

TOKEN = {"Authorization": "Bearer good-governance"}
ADMIN = {"Authorization": "Bearer admin-secret"}
SECRET_PROMPT = "the-secret-prompt-7431"
RUNTIME_PREFIX = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)


@pytest.fixture(scope="module")
def mcp_user_wasm() -> Path:
    return build_skill("mcp_user")


@pytest.fixture(scope="module")
def otlp(receiver: OtlpReceiver) -> OtlpReceiver:
    """The module's OTLP receiver (tests/conftest.py), under the name these tests use for the audit logs."""
    return receiver


@pytest.fixture(scope="module")
def engine(
    otlp: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    streamer_wasm: Path,
    docs_rag_wasm: Path,
    mcp_user_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
    iam: str,
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("governance")
    skills = {
        "probe": probe_wasm,
        "streamer": streamer_wasm,
        "docs-rag": docs_rag_wasm,
        "mcp-user": mcp_user_wasm,
    }
    env = {
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "OPENAI_INFERENCE__URL": openai[1],
        "OPENAI_INFERENCE__TOKEN": "backend-token",
        "AUTHORIZATION_URL": iam,
        "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
        "DOCUMENTS__ADMIN_TOKEN": "admin-secret",
        "AUDIT_LOG": str(workdir / "audit" / "audit.jsonl"),
        "EVALUATIONS__DIRECTORY": str(workdir / "evaluations"),
        "OTEL_ENDPOINT": otlp.url,
        "SKILL_TIMEOUT": "60s",
        # `acc`: one model family, one collection, one tool; a CPU limit of 1 s.
        "NAMESPACES__ACC__POLICY__MODELS": '["llama-*", "slow-*"]',
        "NAMESPACES__ACC__POLICY__COLLECTIONS": '["handbook/policies"]',
        "NAMESPACES__ACC__POLICY__TOOLS": '["add"]',
        "NAMESPACES__ACC__NATIVE_TOOLS": '["add", "subtract"]',
        "NAMESPACES__ACC__LIMITS__CPU_TIME": "1s",
        # `free`: no policy at all (today's behaviour); `thrifty`: 25 tokens a minute (a chat uses 10).
        "NAMESPACES__FREE__NATIVE_TOOLS": '["add", "subtract"]',
        "NAMESPACES__THRIFTY__LIMITS__TOKENS_PER_MINUTE": "25",
        # The default policy opens every model to CSI over HTTP (and to namespaces without a policy);
        # collections and tools, which `acc` restricts and it does not list, stay closed over HTTP.
        "POLICY__MODELS": '["*"]',
    }
    # Few components per namespace: each one compiles at the engine's start.
    served = {"acc": list(skills), "free": ["probe", "mcp-user"], "thrifty": ["probe"]}
    for namespace, names in served.items():
        directory = workdir / namespace
        directory.mkdir()
        for name in names:
            shutil.copy(skills[name], directory / f"{name}.wasm")
        env[f"NAMESPACES__{namespace.upper()}__DIRECTORY"] = str(directory)
    # `team`: a team's own namespace file that tries to give itself a policy and limits.
    team = workdir / "team"
    team.mkdir()
    shutil.copy(probe_wasm, team / "probe.wasm")
    (team / "namespace.toml").write_text(
        'skills = [{ name = "probe" }]\n\n[policy]\nmodels = ["nothing-*"]\n\n[limits]\ncpu-time = "1ms"\n'
    )
    env["NAMESPACES__TEAM__CONFIG_URL"] = (team / "namespace.toml").as_uri()
    env["NAMESPACES__TEAM__PATH"] = str(team)
    # Every component compiled (minutes on a loaded machine) before the tests, then the documents.
    warm = [
        WarmUp.metadata(namespace, name, headers=TOKEN)
        for namespace, names in [*served.items(), ("team", ["probe"])]
        for name in names
    ]
    with running(EngineProcess(workdir, env), warm=warm) as process:
        with httpx.Client(base_url=process.url, timeout=600, headers=TOKEN) as client:
            base = "/v1/documents/handbook/policies"
            assert (
                client.put(f"{base}/indexes/lexical", json={"chunk_size": 120}, headers=ADMIN).status_code
                == 204
            )
            body = {"contents": [{"modality": "text", "text": "Vacation days expire in March."}]}
            assert client.put(f"{base}/vacation", json=body, headers=ADMIN).status_code == 204
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120, headers=TOKEN) as client:
        yield client


def run(client: httpx.Client, namespace: str, skill: str, body: Any) -> httpx.Response:
    return client.post(f"/v1/skills/{namespace}/{skill}/run", json=body)


def audit_records(engine: EngineProcess, at_least: int = 0) -> list[dict[str, Any]]:
    """The trail's records; waits (bounded) for `at_least` of them: a record is written after the answer."""
    path = engine.workdir / "audit" / "audit.jsonl"
    deadline = time.monotonic() + 15
    while True:
        records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if len(records) >= at_least or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


# -- policies: models ---------------------------------------------------------------------------------


def audit_command(engine: EngineProcess, *args: str) -> str:
    """`skill-engine audit --file <the engine's audit log> ARGS`: its standard output (exit code 0)."""
    audit_log = str(engine.workdir / "audit" / "audit.jsonl")
    result = subprocess.run(
        [sys.executable, "-m", "skill_engine", "audit", "--file", audit_log, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_an_allowed_model_answers(client: httpx.Client) -> None:
    response = run(client, "acc", "probe", {"mode": "chat", "model": "llama-3", "text": "hi"})
    assert response.status_code == 200, response.text


def test_a_denied_model_ends_the_run_with_403(client: httpx.Client) -> None:
    response = run(client, "acc", "probe", {"mode": "chat", "model": "gpt-x", "text": "hi"})
    assert response.status_code == 403
    assert response.text == "The policy of namespace 'acc' does not allow the model 'gpt-x'."


def test_a_namespace_without_policy_may_use_any_model(client: httpx.Client) -> None:
    response = run(client, "free", "probe", {"mode": "chat", "model": "gpt-x", "text": "hi"})
    assert response.status_code == 200, response.text


def test_a_denied_model_ends_a_message_stream_with_an_error_event(client: httpx.Client) -> None:
    allowed = client.post(
        "/v1/skills/acc/streamer/message-stream",
        json={"mode": "chat_stream", "model": "llama-3", "text": "hi"},
    )
    assert allowed.status_code == 200
    assert "error" not in [name for name, _ in parse_sse(allowed.content)]
    denied = client.post(
        "/v1/skills/acc/streamer/message-stream", json={"mode": "chat_stream", "model": "gpt-x", "text": "hi"}
    )
    assert denied.status_code == 200
    events = parse_sse(denied.content)
    assert events[-1] == (
        "error",
        {"message": "The policy of namespace 'acc' does not allow the model 'gpt-x'."},
    )


def test_csi_over_http_follows_the_named_namespace(client: httpx.Client) -> None:
    body = [{"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], "params": {"max_tokens": 4}}]
    denied = client.post("/csi/v1/chat", json=body, headers={"x-namespace": "acc"})
    assert denied.status_code == 403
    assert denied.text == "The policy of namespace 'acc' does not allow the model 'gpt-x'."
    body[0]["model"] = "llama-3"
    assert client.post("/csi/v1/chat", json=body, headers={"x-namespace": "acc"}).status_code == 200
    # Without a namespace, the default `[policy]` (every model) applies.
    body[0]["model"] = "gpt-x"
    assert client.post("/csi/v1/chat", json=body).status_code == 200


def test_csi_over_http_cannot_pick_a_more_permissive_namespace(client: httpx.Client) -> None:
    # `acc` restricts collections and tools and `[policy]` lists neither: over HTTP they are closed,
    # also when the caller names `free` (no policy), `acc` (which allows this collection) or nothing.
    search = [
        {
            "query": "vacation",
            "index_path": {"namespace": "handbook", "collection": "policies", "index": "lexical"},
            "max_results": 1,
        }
    ]
    expected = "The engine's default policy does not allow the collection 'handbook/policies'."
    for headers in ({"x-namespace": "free"}, {"x-namespace": "acc"}, {}):
        denied = client.post("/csi/v1/search", json=search, headers=headers)
        assert (denied.status_code, denied.text) == (403, expected)
    call = {"namespace": "free", "requests": [{"name": "add", "arguments": [{"name": "a", "value": 1}]}]}
    denied = client.post("/csi/v1/invoke_tool", json=call)
    assert (denied.status_code, denied.text) == (
        403,
        "The engine's default policy does not allow the tool 'add'.",
    )
    assert client.post("/csi/v1/list_tools", json={"namespace": "free"}).json() == []
    # Skills of `free` keep every tool (the baseline binds CSI over HTTP only).
    assert [t["name"] for t in client.get("/v1/tools/free").json()] == ["add", "subtract"]


# -- policies: collections ------------------------------------------------------------------------------


def search(client: httpx.Client, index: list[str]) -> httpx.Response:
    return run(
        client, "acc", "docs-rag", {"mode": "search", "queries": [{"index": index, "query": "vacation"}]}
    )


def test_an_allowed_collection_is_searched(client: httpx.Client) -> None:
    response = search(client, ["handbook", "policies", "lexical"])
    assert response.status_code == 200, response.text
    assert response.json()["result"][0][0]["path"] == ["handbook", "policies", "vacation"]


def test_a_denied_collection_ends_the_run_with_403(client: httpx.Client) -> None:
    response = search(client, ["finance", "reports", "lexical"])
    assert response.status_code == 403
    assert response.text == "The policy of namespace 'acc' does not allow the collection 'finance/reports'."
    documents = run(client, "acc", "docs-rag", {"mode": "documents", "paths": [["finance", "reports", "q3"]]})
    assert documents.status_code == 403
    assert documents.text == "The policy of namespace 'acc' does not allow the collection 'finance/reports'."


def test_a_denied_collection_over_csi_http(client: httpx.Client) -> None:
    index = {"namespace": "finance", "collection": "reports", "index": "lexical"}
    body = [{"index_path": index, "query": "q", "max_results": 3}]
    response = client.post("/csi/v1/search", json=body, headers={"x-namespace": "acc"})
    assert response.status_code == 403, response.text
    assert response.text == "The policy of namespace 'acc' does not allow the collection 'finance/reports'."


# -- policies: tools ----------------------------------------------------------------------------------


def test_tool_listings_show_allowed_tools_only(client: httpx.Client) -> None:
    listed = run(client, "acc", "mcp-user", {"mode": "list"})
    assert listed.status_code == 200, listed.text
    assert [t["name"] for t in listed.json()["result"]] == ["add"]
    assert [t["name"] for t in client.get("/v1/tools/acc").json()] == ["add"]
    assert [t["name"] for t in client.get("/v1/tools/free").json()] == ["add", "subtract"]
    # Over HTTP tools are closed (`[policy]` lists none while `acc` restricts them).
    assert client.post("/csi/v1/list_tools", json={"namespace": "acc"}).json() == []


def test_an_allowed_tool_runs_and_a_denied_one_ends_the_run(client: httpx.Client) -> None:
    allowed = run(
        client, "acc", "mcp-user", {"mode": "invoke", "calls": [{"name": "add", "args": {"a": 1, "b": 2}}]}
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["result"][0]["text"] == "3"
    denied = run(
        client,
        "acc",
        "mcp-user",
        {"mode": "invoke", "calls": [{"name": "subtract", "args": {"a": 1, "b": 2}}]},
    )
    assert denied.status_code == 403
    assert denied.text == "The policy of namespace 'acc' does not allow the tool 'subtract'."
    over_http = client.post(
        "/csi/v1/invoke_tool",
        json={
            "namespace": "acc",
            "requests": [{"name": "subtract", "arguments": [{"name": "a", "value": 1}]}],
        },
    )
    assert over_http.status_code == 403
    assert over_http.text == "The policy of namespace 'acc' does not allow the tool 'subtract'."


def test_a_team_namespace_file_cannot_set_a_policy(client: httpx.Client, engine: EngineProcess) -> None:
    response = run(client, "team", "probe", {"mode": "chat", "model": "gpt-x", "text": "hi"})
    assert response.status_code == 200, response.text
    logs = engine.logs()
    assert (
        "ignoring `policy` in a namespace file: policies are set in the engine's configuration only" in logs
    )
    assert "ignoring `limits` in a namespace file: limits are set in the engine's configuration only" in logs
    assert logs.count("ignoring `policy` in a namespace file") == 1  # not at every watcher pass


# -- token budgets ------------------------------------------------------------------------------------


def test_an_exhausted_token_budget_answers_429_with_retry_after(client: httpx.Client) -> None:
    body = {"mode": "chat", "model": "llama-3", "text": "hi"}
    statuses = [run(client, "thrifty", "probe", body).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]  # 25 tokens: the third call starts with 5 left, ends at -5
    refused = run(client, "thrifty", "probe", body)
    assert refused.status_code == 429
    assert refused.text.startswith(
        "The namespace 'thrifty' has used its budget of 25 inference tokens per minute. Please try again in "
    )
    assert 1 <= int(refused.headers["retry-after"]) <= 60


# -- CPU time -----------------------------------------------------------------------------------------


def test_a_busy_loop_is_stopped_after_its_cpu_time(client: httpx.Client) -> None:
    started = time.monotonic()
    response = run(client, "acc", "probe", {"mode": "busy"})
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.text == RUNTIME_PREFIX + "Maximum skill CPU time reached."
    # 1 s of CPU; wall time is longer on a loaded machine, but below the 60 s wall limit.
    assert 1.0 <= elapsed < 58


def test_waiting_on_a_slow_backend_uses_no_cpu_time(client: httpx.Client) -> None:
    started = time.monotonic()
    response = run(client, "acc", "probe", {"mode": "chat", "model": "slow-3", "text": "hi"})
    assert response.status_code == 200, response.text
    assert time.monotonic() - started >= 3


# -- the audit trail ------------------------------------------------------------------------------------


def test_every_invocation_leaves_one_audit_record_without_content(
    client: httpx.Client, engine: EngineProcess
) -> None:
    before = len(audit_records(engine))
    response = run(
        client,
        "acc",
        "docs-rag",
        {
            "mode": "rag",
            "model": "llama-3",
            "queries": [{"index": ["handbook", "policies", "lexical"], "query": SECRET_PROMPT + " vacation"}],
        },
    )
    assert response.status_code == 200, response.text
    denied = run(client, "acc", "probe", {"mode": "chat", "model": "gpt-x", "text": SECRET_PROMPT})
    assert denied.status_code == 403
    records = audit_records(engine, before + 2)[before:]
    # Earlier tests' records may land late (a record is written after its answer): pick ours.
    (rag,) = [r for r in records if r["skill"] == "docs-rag" and r["models"]]
    (refused,) = [r for r in records if r["status"] == 403]
    for field in (
        "time",
        "trace_id",
        "namespace",
        "skill",
        "digest",
        "subject",
        "models",
        "collections",
        "documents",
        "tools",
        "status",
        "duration_ms",
    ):
        assert field in rag
    assert rag["kind"] == "run"
    assert (rag["namespace"], rag["skill"], rag["subject"], rag["email"]) == (
        "acc",
        "docs-rag",
        "user-1",
        "a@example.com",
    )
    assert rag["digest"]
    assert rag["models"] == ["llama-3"]
    assert rag["collections"] == ["handbook/policies"]
    assert rag["documents"] == ["handbook/policies/vacation"]
    assert rag["tokens"] == {"prompt": 7, "completion": 3}
    assert rag["status"] == 200 and rag["error"] is None and rag["denials"] == []
    assert refused["status"] == 403
    assert refused["error"] == "policy_denied"
    assert refused["denials"] == [{"kind": "model", "name": "gpt-x"}]
    text = (engine.workdir / "audit" / "audit.jsonl").read_text()
    assert SECRET_PROMPT not in text
    assert "Vacation days expire" not in text


def test_csi_over_http_and_streams_are_audited(client: httpx.Client, engine: EngineProcess) -> None:
    before = len(audit_records(engine))
    body = [
        {"model": "llama-3", "messages": [{"role": "user", "content": "hi"}], "params": {"max_tokens": 4}}
    ]
    assert client.post("/csi/v1/chat", json=body, headers={"x-namespace": "acc"}).status_code == 200
    client.post("/v1/skills/acc/streamer/message-stream", json={"mode": "chat_stream", "model": "gpt-x"})
    records = audit_records(engine, before + 2)[before:]
    (csi,) = [r for r in records if r["kind"] == "csi"]
    (stream,) = [r for r in records if r["kind"] == "message-stream"]
    assert (csi["kind"], csi["function"], csi["namespace"], csi["models"]) == (
        "csi",
        "chat",
        "acc",
        ["llama-3"],
    )
    assert (stream["kind"], stream["skill"], stream["status"], stream["error"]) == (
        "message-stream",
        "streamer",
        200,
        "policy_denied",
    )


def test_an_evaluation_run_leaves_a_record_per_example_like_invocations(
    client: httpx.Client, engine: EngineProcess
) -> None:
    before = len(audit_records(engine))
    rows = [{"input": {"mode": "chat", "model": m, "text": SECRET_PROMPT}} for m in ("llama-3", "gpt-x")]
    content = "".join(json.dumps(row) + "\n" for row in rows)
    uploaded = client.post(
        "/v1/datasets",
        params={"name": "audited"},
        content=content,
        headers={"content-type": "application/x-ndjson"},
    )
    assert uploaded.status_code == 201, uploaded.text
    body = {
        "namespace": "acc",
        "skill": "probe",
        "dataset": uploaded.json()["id"],
        "evaluators": [{"type": "llm_judge", "model": "llama-judge", "rubric": "Is it fine?"}],
        "concurrency": 1,
    }
    started = client.post("/v1/evaluations", json=body)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 120
    while client.get(f"/v1/evaluations/{run_id}").json()["status"] == "running":
        assert time.monotonic() < deadline, "evaluation still running"
        time.sleep(0.2)
    results = client.get(f"/v1/evaluations/{run_id}/results").json()["items"]
    records = [r for r in audit_records(engine, before + 3)[before:] if r["evaluation"] == run_id]
    assert all(SECRET_PROMPT not in json.dumps(r) for r in records)
    (start,) = [r for r in records if r["kind"] == "evaluation-run"]
    assert (start["namespace"], start["skill"], start["subject"], start["status"]) == (
        "acc",
        "probe",
        "user-1",
        202,
    )
    examples = sorted((r for r in records if r["kind"] == "evaluation"), key=lambda r: r["status"])
    assert [r["status"] for r in examples] == [200, 403]
    allowed, denied = examples
    for record in examples:
        assert (record["namespace"], record["skill"], record["subject"]) == ("acc", "probe", "user-1")
        assert record["email"] == "a@example.com" and record["digest"]
    # The example's invocation and its judge: both models, the tokens of both.
    assert allowed["models"] == ["llama-3", "llama-judge"]
    assert allowed["tokens"]["prompt"] > 0 and allowed["error"] is None
    assert (denied["error"], denied["denials"]) == ("policy_denied", [{"kind": "model", "name": "gpt-x"}])
    assert sorted(r["trace_id"] for r in examples) == sorted(r["trace_id"] for r in results)
    # The query command finds the examples of one run.
    out = audit_command(engine, "--kind", "evaluation", "--evaluation", run_id, "--json")
    assert sorted(json.loads(line)["status"] for line in out.splitlines()) == [200, 403]


def test_the_audit_command_answers_who_read_a_collection(client: httpx.Client, engine: EngineProcess) -> None:
    assert search(client, ["handbook", "policies", "lexical"]).status_code == 200
    out = audit_command(
        engine, "--namespace", "acc", "--since", "1h", "--touched", "collection:handbook/*", "--json"
    )
    found = [json.loads(line) for line in out.splitlines()]
    assert found
    assert all(r["namespace"] == "acc" and "handbook/policies" in r["collections"] for r in found)
    assert {r["skill"] for r in found} == {"docs-rag"}
    assert {r["subject"] for r in found} == {"user-1"}
    table = audit_command(engine, "--touched", "model:gpt-*")
    assert "gpt-x" in table and "free" in table


def test_namespace_metrics(client: httpx.Client, engine: EngineProcess) -> None:
    run(client, "acc", "probe", {"mode": "chat", "model": "gpt-x", "text": "hi"})
    metrics = httpx.get(engine.metrics_url).text
    assert 'kernel_namespace_denials_total{kind="model",namespace="acc"}' in metrics
    assert 'kernel_namespace_cpu_seconds_total{namespace="acc"}' in metrics
    assert 'kernel_namespace_tokens_total{namespace="acc"}' in metrics
    assert 'kernel_namespace_invocations_in_flight{namespace="acc"} 0.0' in metrics
    # Label values only from configured namespaces: the CSI over HTTP call without one is not a label.
    governance = [line for line in metrics.splitlines() if line.startswith("kernel_namespace_")]
    assert governance and not [line for line in governance if 'namespace=""' in line]


def test_audit_records_are_exported_as_otlp_log_records(client: httpx.Client, otlp: OtlpReceiver) -> None:
    assert (
        run(client, "acc", "probe", {"mode": "chat", "model": "llama-3", "text": SECRET_PROMPT}).status_code
        == 200
    )
    deadline = time.monotonic() + 30  # the batch processor exports every few seconds
    while True:
        found = [
            log
            for log in otlp.logs
            if log["event_name"] == "skill_engine.audit"
            and log["attributes"].get("audit.skill") == "probe"
            and log["attributes"].get("audit.namespace") == "acc"
            and log["attributes"].get("audit.models") == ["llama-3"]
        ]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found, otlp.logs
    attributes = found[-1]["attributes"]
    assert (attributes["audit.namespace"], attributes["audit.skill"], attributes["audit.subject"]) == (
        "acc",
        "probe",
        "user-1",
    )
    assert attributes["audit.status"] == 200
    assert SECRET_PROMPT not in json.dumps(otlp.logs)
