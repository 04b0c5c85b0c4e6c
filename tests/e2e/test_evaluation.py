"""Evaluation through the real engine: datasets, runs of SDK-built skills, every evaluator, cancel, compare.

The calculator skill (tests/skills/calculator.py) has a known answer for every example, so each
evaluator's score is spelled out here; version 2 (calculator_v2.py) multiplies wrongly and no longer
fails on division by zero, which the comparison must report as two regressions and one improvement.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running
from tests.support.openai_server import OpenAIServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.skills import build_skill

NDJSON = {"content-type": "application/x-ndjson"}
EXAMPLES: list[dict[str, Any]] = [
    {"input": {"a": 1, "b": 2}, "expected": {"value": 3}},
    {"input": {"a": 2, "b": 3, "op": "mul"}, "expected": {"value": 6}},
    {"input": {"a": 5, "b": 3, "op": "sub", "explain": True}, "expected": {"value": 2}},
    {"input": {"a": 1, "b": 0, "op": "div"}, "expected": {"value": 0}, "metadata": {"note": "fails in v1"}},
    {"input": {"a": 0.1, "b": 0.2}, "expected": {"value": 0.3}},
    {"input": {"a": 4, "b": 4, "op": "mul"}, "expected": {"value": 16}},
]
EVALUATORS: list[Any] = [
    {"type": "exact_match", "field": "value"},
    {"type": "numeric", "field": "value", "tolerance": 1e-9},
    "json_subset",
    {"type": "regex", "field": "explanation", "pattern": "^echo: "},
    {
        "type": "json_schema",
        "schema": {"type": "object", "required": ["value"], "properties": {"value": {"type": "number"}}},
    },
    {"type": "llm_judge", "model": "judge", "rubric": "Is the value right?"},
]


def ndjson(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


@pytest.fixture(scope="module")
def calculators() -> tuple[Path, Path]:
    return build_skill("calculator"), build_skill("calculator_v2")


def evaluation_env(workdir: Path, openai_url: str, compiled_cache: Path, **env: str) -> dict[str, str]:
    return {
        "OPENAI_INFERENCE__URL": openai_url,
        "OPENAI_INFERENCE__TOKEN": "tok",
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "EVALUATIONS__DIRECTORY": str(workdir / "data"),
        "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
        **env,
    }


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    calculators: tuple[Path, Path],
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
    receiver: OtlpReceiver,
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("evaluation")
    v1, _ = calculators
    env = evaluation_env(
        workdir,
        openai[1],
        compiled_cache,
        EVALUATIONS__MAX_DATASET_BYTES="64KiB",
        OTEL_ENDPOINT=receiver.url,
        OTEL_SAMPLING_RATIO="1",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    skills = {"calculator": v1, "versioned": v1, "probe": probe_wasm}
    warm = [WarmUp.run("acc", "calculator", {"a": 1, "b": 1}), WarmUp.run("acc", "probe", {"mode": "echo"})]
    with running(engine_with_skills(workdir, skills, env, namespace="ACC"), warm) as started:
        yield started


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=60) as c:
        yield c


def upload(client: httpx.Client, rows: list[dict[str, Any]], name: str = "calc") -> str:
    response = client.post("/v1/datasets", params={"name": name}, content=ndjson(rows), headers=NDJSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def start(client: httpx.Client, dataset: str, skill: str = "calculator", **extra: Any) -> str:
    body = {"namespace": "acc", "skill": skill, "dataset": dataset, "evaluators": EVALUATORS, **extra}
    response = client.post("/v1/evaluations", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait(client: httpx.Client, run_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/evaluations/{run_id}").json()
        if run["status"] != "running":
            return dict(run)
        assert time.monotonic() < deadline, f"evaluation still running: {run}"
        time.sleep(0.2)


def test_a_dataset_is_uploaded_listed_paged_and_deleted(client: httpx.Client) -> None:
    response = client.post("/v1/datasets", params={"name": "six"}, content=ndjson(EXAMPLES), headers=NDJSON)
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"id", "name", "examples"}
    assert (created["name"], created["examples"]) == ("six", 6)

    page = client.get(f"/v1/datasets/{created['id']}", params={"offset": 2, "limit": 2}).json()
    assert (page["examples"], page["offset"], page["limit"]) == (6, 2, 2)
    assert page["items"] == [
        {"input": {"a": 5, "b": 3, "op": "sub", "explain": True}, "expected": {"value": 2}, "metadata": {}},
        {
            "input": {"a": 1, "b": 0, "op": "div"},
            "expected": {"value": 0},
            "metadata": {"note": "fails in v1"},
        },
    ]
    assert created["id"] in [d["id"] for d in client.get("/v1/datasets").json()]

    csv_body = 'input,expected\n"{""a"": 1, ""b"": 1}","{""value"": 2}"\n"{""a"": 2, ""b"": 2}",\n'
    from_csv = client.post(
        "/v1/datasets", params={"name": "csv"}, content=csv_body, headers={"content-type": "text/csv"}
    )
    assert from_csv.status_code == 201, from_csv.text
    items = client.get(f"/v1/datasets/{from_csv.json()['id']}").json()["items"]
    assert items == [
        {"input": {"a": 1, "b": 1}, "expected": {"value": 2}, "metadata": {}},
        {"input": {"a": 2, "b": 2}, "metadata": {}},
    ]

    assert client.delete(f"/v1/datasets/{created['id']}").status_code == 204
    assert client.get(f"/v1/datasets/{created['id']}").status_code == 404
    assert client.delete(f"/v1/datasets/{created['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b'{"input": 1}\n{"input": 2}\n{"input": 3,\n', NDJSON["content-type"], "Line 3: invalid JSON: "),
        (b'{"input": 1}\n\n{"expected": 2}\n', NDJSON["content-type"], "Line 3: the example has no `input`."),
        (b"[1, 2]\n", NDJSON["content-type"], "Line 1: expected a JSON object with `input`, got an array."),
        (b'{"input": 1, "answer": 2}\n', NDJSON["content-type"], "Line 1: unknown field(s) `answer`"),
        (b"input,expected\n1,2\n{oops,3\n", "text/csv", "Line 3: column `input` must hold JSON"),
        (b"question\n1\n", "text/csv", "Line 1: the CSV header needs an `input` column"),
        (b"", NDJSON["content-type"], "The dataset has no examples."),
        (b'{"input": 1}', "application/xml", "Unsupported content type `application/xml`"),
    ],
)
def test_a_malformed_upload_names_the_line_and_stores_nothing(
    client: httpx.Client, body: bytes, content_type: str, text: str
) -> None:
    before = len(client.get("/v1/datasets").json())
    response = client.post(
        "/v1/datasets", params={"name": "bad"}, content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert response.text.startswith(text), response.text
    assert len(client.get("/v1/datasets").json()) == before


def test_upload_limits_and_name(client: httpx.Client) -> None:
    big = ndjson([{"input": "x" * 1000}] * 100)  # 100 KB against the 64 KiB this engine allows
    response = client.post("/v1/datasets", params={"name": "big"}, content=big, headers=NDJSON)
    assert (response.status_code, response.text) == (413, "The dataset is larger than 65536 bytes.")
    nameless = client.post("/v1/datasets", content=ndjson(EXAMPLES), headers=NDJSON)
    assert nameless.status_code == 400
    assert nameless.text == "Give the dataset a `name` query parameter (1 to 200 characters)."


def test_a_run_scores_every_evaluator_and_counts_errors_tokens_and_traces(
    client: httpx.Client, receiver: OtlpReceiver
) -> None:
    run_id = start(client, upload(client, EXAMPLES), concurrency=3)
    run = wait(client, run_id)
    assert run["status"] == "done", run
    assert run["progress"] == {"done": 6, "total": 6}
    assert run["errors"] == 1
    assert run["summary"] == {
        # five examples produced output (the division by zero failed), six count for the pass rate
        "exact_match": {"mean_score": 0.8, "pass_rate": 0.6667, "scored": 5},  # 0.1 + 0.2 != 0.3
        "numeric": {"mean_score": 1.0, "pass_rate": 0.8333, "scored": 5},
        "json_subset": {"mean_score": 0.8, "pass_rate": 0.6667, "scored": 5},
        "regex": {"mean_score": 0.2, "pass_rate": 0.1667, "scored": 5},  # only one example explains
        "json_schema": {"mean_score": 1.0, "pass_rate": 0.8333, "scored": 5},
        "llm_judge": {"mean_score": 0.8, "pass_rate": 0.8333, "scored": 5},
    }
    # the skill's own chat (one example explains: 7 + 3 tokens), the judge's five chats apart from it
    assert run["tokens"] == {"prompt": 7, "completion": 3, "total": 10}
    assert run["judge_tokens"] == {"prompt": 35, "completion": 15, "total": 50}
    assert run[
        "digest"
    ]  # what the store calls the version: a directory skill's mtime stamp, as in PhariaEngine
    assert run["latency_ms"]["p50"] > 0 and run["latency_ms"]["p95"] >= run["latency_ms"]["p50"]
    assert run["started_at"].endswith("Z") and run["finished_at"] >= run["started_at"]

    results = client.get(f"/v1/evaluations/{run_id}/results").json()["items"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    failed = results[3]
    assert failed["status"] == 400 and "output" not in failed
    assert "ZeroDivisionError: float division by zero" in failed["error"]
    assert failed["scores"] == []
    explained = results[2]
    assert explained["output"] == {"value": 2.0, "explanation": "echo: 5.0 sub 3.0"}
    assert explained["tokens"] == {"prompt": 7, "completion": 3, "total": 10}
    assert {s["evaluator"]: s["passed"] for s in explained["scores"]} == dict.fromkeys(
        ["exact_match", "numeric", "json_subset", "regex", "json_schema", "llm_judge"], True
    )
    judge = next(s for s in explained["scores"] if s["evaluator"] == "llm_judge")
    assert judge == {
        "evaluator": "llm_judge",
        "score": 0.8,
        "passed": True,
        "reason": "close enough",
        "tokens": {"prompt": 7, "completion": 3, "total": 10},
    }
    inexact = {s["evaluator"]: s for s in results[4]["scores"]}
    assert inexact["exact_match"]["reason"] == "expected 0.3, got 0.30000000000000004"
    assert inexact["numeric"]["passed"] is True

    spans = receiver.wait_for_trace(explained["trace_id"], {"evaluation_example", "skill_execution", "chat"})
    (root,) = spans["evaluation_example"]
    assert root.parent_span_id == "" and root.attributes["skill"] == "acc/calculator"
    (execution,) = spans["skill_execution"]
    assert execution.parent_span_id == root.span_id
    (chat,) = spans["chat"]
    assert chat.parent_span_id == execution.span_id
    assert chat.attributes["gen_ai.request.model"] == "test-model"
    assert len({r["trace_id"] for r in results}) == 6  # a trace of its own per example


@pytest.mark.parametrize(
    ("change", "status", "text"),
    [
        ({"evaluators": []}, 400, "`evaluators` must be a non-empty list."),
        (
            {"evaluators": ["bleu"]},
            400,
            "Unknown evaluator `bleu`; known: `exact_match`, `json_subset`, `regex`",
        ),
        ({"evaluators": [{"type": "regex", "pattern": "("}]}, 400, "Evaluator `regex`: invalid pattern: "),
        (
            {"evaluators": [{"type": "llm_judge", "rubric": "x"}]},
            400,
            "Evaluator `llm_judge` needs a `model` name.",
        ),
        (
            {"evaluators": [{"type": "numeric", "tolerance": -1}]},
            400,
            "Evaluator `numeric`: `tolerance` must be",
        ),
        (
            {"evaluators": [{"type": "json_schema", "schema": {"type": 5}}]},
            400,
            "Evaluator `json_schema`: invalid",
        ),
        ({"evaluators": ["regex"]}, 400, "Evaluator `regex` needs a `pattern` string."),
        ({"evaluators": ["exact_match", "exact_match"]}, 400, "Two evaluators are named `exact_match`"),
        ({"concurrency": 0}, 400, "`concurrency` must be a whole number of at least 1."),
        ({"concurrency": 1000}, 400, "`concurrency` is at most 32 on this engine."),
        ({"skill": None}, 400, "`skill` is required and must be a string."),
        ({"skill": "nope"}, 404, "Skill `acc/nope` not found."),
        ({"dataset": "no-such-dataset"}, 404, "Dataset `no-such-dataset` not found."),
    ],
)
def test_an_invalid_run_is_refused_before_anything_runs(
    client: httpx.Client, change: dict[str, Any], status: int, text: str
) -> None:
    body = {
        "namespace": "acc",
        "skill": "calculator",
        "dataset": upload(client, EXAMPLES[:1]),
        "evaluators": ["exact_match"],
    }
    body |= change
    response = client.post("/v1/evaluations", json=body)
    assert response.status_code == status
    assert response.text.startswith(text), response.text


def test_a_message_stream_skill_is_judged_on_its_text_and_payload(client: httpx.Client) -> None:
    dataset = upload(client, [{"input": "Homer", "expected": {"text": "Hello"}}])
    body = {"namespace": "test-beta", "skill": "hello", "dataset": dataset, "evaluators": ["json_subset"]}
    run = wait(client, client.post("/v1/evaluations", json=body).json()["id"])
    assert run["summary"]["json_subset"] == {"mean_score": 1.0, "pass_rate": 1.0, "scored": 1}
    (result,) = client.get(f"/v1/evaluations/{run['id']}/results").json()["items"]
    assert result["output"] == {"text": "Hello", "payload": None}


def test_cancelling_stops_in_flight_invocations_and_keeps_finished_results(client: httpx.Client) -> None:
    fast = [{"input": {"mode": "echo", "payload": i}, "expected": {"result": i}} for i in range(2)]
    slow = [{"input": {"mode": "busy"}, "expected": {"result": None}} for _ in range(4)]
    dataset = upload(client, fast + slow)
    body = {
        "namespace": "acc",
        "skill": "probe",
        "dataset": dataset,
        "evaluators": ["json_subset"],
        "concurrency": 2,
    }
    run_id = client.post("/v1/evaluations", json=body).json()["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/v1/evaluations/{run_id}").json()["progress"]["done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelled = client.delete(f"/v1/evaluations/{run_id}")
    assert cancelled.json() == {"id": run_id, "status": "cancelled"}
    time.sleep(1)
    run = client.get(f"/v1/evaluations/{run_id}").json()
    assert (run["status"], run["reason"], run["progress"]) == (
        "cancelled",
        "Cancelled by request.",
        {"done": 2, "total": 6},
    )
    assert [r["output"] for r in client.get(f"/v1/evaluations/{run_id}/results").json()["items"]] == [
        {"result": 0},
        {"result": 1},
    ]
    # the busy guests were stopped: the engine runs a new invocation at once
    assert client.post("/v1/skills/acc/probe/run", json={"mode": "echo", "payload": "ok"}).json() == {
        "result": "ok"
    }
    # a finished run is deleted by a second DELETE
    assert client.delete(f"/v1/evaluations/{run_id}").status_code == 204
    assert client.get(f"/v1/evaluations/{run_id}").status_code == 404


def test_two_versions_compare_with_regressions_first(
    client: httpx.Client, engine: EngineProcess, calculators: tuple[Path, Path]
) -> None:
    dataset = upload(client, EXAMPLES)
    a = wait(client, start(client, dataset, skill="versioned"))
    # Deploy version 2 atomically: a half-copied file seen by the namespace watcher is a broken skill.
    staged = engine.workdir / "versioned.wasm.new"
    shutil.copy(calculators[1], staged)
    os.replace(staged, engine.workdir / "skills" / "versioned.wasm")
    deadline = time.monotonic() + 60
    while True:
        b = wait(client, start(client, dataset, skill="versioned"))
        if b["digest"] != a["digest"]:
            break
        assert time.monotonic() < deadline, "version 2 was not picked up"
        time.sleep(0.5)
    compared = client.get("/v1/evaluations/compare", params={"a": a["id"], "b": b["id"]}).json()
    assert compared["summary"]["exact_match"] == {"mean_score": -0.3, "pass_rate": -0.1667}
    assert compared["errors"] == -1
    assert [(r["index"], r["delta"]) for r in compared["regressions"]] == [(1, -0.5), (5, -0.5)]
    assert [(r["index"], r["delta"]) for r in compared["improvements"]] == [(3, 0.8)]
    regression = compared["regressions"][0]
    assert regression["input"] == {"a": 2, "b": 3, "op": "mul"}
    assert regression["a"]["score"] == 0.8 and regression["b"]["score"] == 0.3
    other = client.get(
        "/v1/evaluations/compare", params={"a": a["id"], "b": start(client, upload(client, EXAMPLES))}
    )
    assert (other.status_code, other.text) == (
        400,
        "The evaluations ran on different datasets; only runs on one dataset compare.",
    )


def cli(engine: EngineProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skill_engine", "eval", "--url", engine.url, *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


NUMERIC = '{"type": "numeric", "field": "value", "tolerance": 0.001}'


def test_cli_uploads_evaluates_gates_on_pass_rate_and_compares(engine: EngineProcess, tmp_path: Path) -> None:
    data = tmp_path / "questions.jsonl"
    data.write_bytes(ndjson(EXAMPLES))
    common = ["--namespace", "acc", "--skill", "calculator", "--dataset", str(data)]
    gate = cli(
        engine,
        *common,
        "--evaluator",
        '{"type": "exact_match", "field": "value"}',
        "--evaluator",
        NUMERIC,
        "--min-pass-rate",
        "0.8",
    )
    assert gate.returncode == 1, gate.stderr
    assert "pass rate below 0.8: exact_match 0.6667" in " ".join(gate.stderr.split())
    assert "exact_match" in gate.stdout and "0.800" in gate.stdout  # the summary table

    first_id = next(line.split()[1] for line in gate.stderr.splitlines() if line.startswith("evaluation "))
    dataset = httpx.get(f"{engine.url}/v1/evaluations/{first_id}").json()["dataset"]
    export = tmp_path / "results.csv"
    again = ["--namespace", "acc", "--skill", "calculator", "--dataset", dataset]  # the stored dataset by id
    passing = cli(engine, *again, "--evaluator", NUMERIC, "--min-pass-rate", "0.8", "--export", str(export))
    assert passing.returncode == 0, passing.stderr
    rows = list(csv.reader(io.StringIO(export.read_text())))
    assert ",".join(rows[0]) == "index,input,expected,output,error,status,scores,latency_ms,trace_id"
    assert [row[0] for row in rows[1:]] == ["0", "1", "2", "3", "4", "5"]
    assert "ZeroDivisionError" in rows[4][4] and rows[4][3] == ""

    run_ids = [
        line.split()[1]
        for line in (gate.stderr + passing.stderr).splitlines()
        if line.startswith("evaluation ")
    ]
    assert len(run_ids) == 2
    compared = cli(engine, "compare", run_ids[0], run_ids[1])
    assert compared.returncode == 0, compared.stderr
    assert "numeric" in compared.stdout

    wrong = cli(
        engine, "--namespace", "acc", "--skill", "calculator", "--dataset", str(data), "--evaluator", "bleu"
    )
    assert wrong.returncode == 2
    assert "Unknown evaluator `bleu`" in wrong.stderr


def test_an_interrupted_run_is_failed_after_a_restart_never_left_running(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path, openai: tuple[OpenAIServer, str]
) -> None:
    env = evaluation_env(tmp_path, openai[1], compiled_cache)
    first = engine_with_skills(tmp_path, {"probe": probe_wasm}, env, namespace="ACC").start(timeout=120)
    with httpx.Client(base_url=first.url, timeout=60) as client:
        dataset = upload(client, [{"input": {"mode": "busy"}}] * 3)
        body = {"namespace": "acc", "skill": "probe", "dataset": dataset, "evaluators": ["json_subset"]}
        run_id = client.post("/v1/evaluations", json=body).json()["id"]
        assert client.get(f"/v1/evaluations/{run_id}").json()["status"] == "running"
    assert first.process is not None
    first.process.kill()  # no chance to clean up: the heartbeat stops
    first.process.wait()
    same = {k: v for k, v in first.env.items() if k not in ("KERNEL_ADDRESS", "METRICS_ADDRESS")}
    second = EngineProcess(tmp_path, same).start(timeout=120)  # same storage, new ports
    try:
        with httpx.Client(base_url=second.url, timeout=60) as client:
            deadline = time.monotonic() + 45
            while (run := client.get(f"/v1/evaluations/{run_id}").json())["status"] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.5)
        assert run["status"] == "failed"
        assert (
            run["reason"]
            == "The engine running this evaluation stopped before it finished (restart or crash)."
        )
    finally:
        second.stop()
