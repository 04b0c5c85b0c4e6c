"""Two engine processes sharing one real PostgreSQL: what one stores and runs, the other sees and controls."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills, running
from tests.support.openai_server import OpenAIServer
from tests.support.postgres import PostgresCluster


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def engines(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: PostgresCluster,
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[tuple[EngineProcess, EngineProcess]]:
    with contextlib.ExitStack() as stack:
        started: list[EngineProcess] = []
        for replica in ("a", "b"):
            workdir = tmp_path_factory.mktemp(f"replica-{replica}")
            env = {
                "OPENAI_INFERENCE__URL": openai[1],
                "OPENAI_INFERENCE__TOKEN": "tok",
                "WASMTIME_CACHE_DIR": str(compiled_cache),
                "EVALUATIONS__DATABASE_URL": postgres.url,
                "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
            }
            engine = engine_with_skills(workdir, {"probe": probe_wasm}, env, namespace="ACC")
            started.append(stack.enter_context(running(engine, timeout=120)))
        yield started[0], started[1]


def test_datasets_and_runs_are_shared_across_replicas(
    engines: tuple[EngineProcess, EngineProcess], postgres: PostgresCluster
) -> None:
    a, b = (httpx.Client(base_url=e.url, timeout=60) for e in engines)
    rows = [{"input": {"mode": "echo", "payload": i}, "expected": {"result": i}} for i in range(4)]
    body = "".join(json.dumps(row) + "\n" for row in rows)
    dataset = a.post("/v1/datasets", params={"name": "shared"}, content=body).json()
    assert dataset["examples"] == 4
    assert dataset["id"] in [d["id"] for d in b.get("/v1/datasets").json()]

    evaluation = {
        "namespace": "acc",
        "skill": "probe",
        "dataset": dataset["id"],
        "evaluators": ["json_subset"],
    }
    run_id = a.post("/v1/evaluations", json=evaluation).json()["id"]
    deadline = time.monotonic() + 120
    while (run := b.get(f"/v1/evaluations/{run_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert run["status"] == "done"
    assert run["summary"] == {"json_subset": {"mean_score": 1.0, "pass_rate": 1.0, "scored": 4}}
    items = b.get(f"/v1/evaluations/{run_id}/results").json()["items"]
    assert [item["output"] for item in items] == [{"result": i} for i in range(4)]


def test_a_cancel_sent_to_another_replica_stops_the_run(engines: tuple[EngineProcess, EngineProcess]) -> None:
    a, b = (httpx.Client(base_url=e.url, timeout=60) for e in engines)
    rows = [{"input": {"mode": "busy"}}] * 3
    body = "".join(json.dumps(row) + "\n" for row in rows)
    dataset = a.post("/v1/datasets", params={"name": "busy"}, content=body).json()["id"]
    evaluation = {"namespace": "acc", "skill": "probe", "dataset": dataset, "evaluators": ["json_subset"]}
    run_id = a.post("/v1/evaluations", json=evaluation).json()["id"]
    assert b.delete(f"/v1/evaluations/{run_id}").json() == {"id": run_id, "status": "cancelled"}
    # the owner notices at its next heartbeat and stops its busy invocations
    deadline = time.monotonic() + 20
    while True:
        metrics = httpx.get(engines[0].metrics_url).text
        in_flight = [
            line for line in metrics.splitlines() if line.startswith("kernel_skill_invocations_in_flight ")
        ]
        if in_flight and float(in_flight[0].split()[-1]) == 0:
            break
        assert time.monotonic() < deadline, in_flight
        time.sleep(0.3)
    assert a.get(f"/v1/evaluations/{run_id}").json()["status"] == "cancelled"


def test_the_database_password_never_reaches_the_logs(
    engines: tuple[EngineProcess, EngineProcess], postgres: PostgresCluster
) -> None:
    for engine in engines:
        assert postgres.password not in engine.logs()
