"""The console's HTTP side against the real engine: landing page, recorded executions (kept without
OTEL_ENDPOINT, content capture respected, skill log lines), health from the metrics, the OpenAPI document,
and authentication (pages public, data behind the token)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills, running
from tests.support.openai_server import OpenAIServer
from tests.support.skills import build_skill

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, compiled_cache: Path, openai: tuple[OpenAIServer, str]
) -> Iterator[EngineProcess]:
    _, url = openai
    workdir = tmp_path_factory.mktemp("console-api")
    (workdir / "skills").mkdir()
    (workdir / "skills" / "Bad Name.wasm").write_bytes(b"")  # refused for its name, shown as such
    process = engine_with_skills(
        workdir,
        {"console-form": build_skill("console_form")},
        {
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "CONSOLE_EXECUTIONS": "3",
        },
    )
    with running(process, timeout=180):
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=600) as client:
        yield client


def test_the_landing_page_links_console_docs_health_and_shows_the_example(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for link in ('href="/ui"', 'href="/api-docs"', 'href="/openapi.json"', 'href="/health"'):
        assert link in page
    assert f"curl -N -X POST {client.base_url}/v1/skills/test-beta/hello/message-stream" in page
    assert client.get("/ui").status_code == 200
    assert client.get("/ui/static/js/app.js").headers["content-type"].startswith("text/javascript")


def test_api_docs_load_their_viewer_from_the_engine(client: httpx.Client) -> None:
    page = client.get("/api-docs").text
    assert "cdn." not in page and "https://" not in page
    assert client.get("/ui/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert "Apache License" in client.get("/ui/static/vendor/swagger-ui/LICENSE").text


def run(client: httpx.Client, body: object) -> httpx.Response:
    return client.post("/v1/skills/my-team/console-form/run", json=body)


def test_executions_are_recorded_with_spans_and_log_lines(client: httpx.Client) -> None:
    ok = run(client, {"recipient": "Ada", "address": {"city": "Rome"}})
    assert ok.status_code == 200
    assert "traceparent" not in ok.headers  # no OTEL_ENDPOINT: nothing propagated, as before
    bad = run(client, {"recipient": "Ada"})  # no address: the skill rejects its input
    assert bad.status_code == 400
    listed = client.get("/v1/console/executions").json()
    assert listed["recording"] is True and listed["capacity"] == 3
    newest, previous = listed["executions"][:2]
    assert (newest["namespace"], newest["skill"]) == ("my-team", "console-form")
    assert newest["status"] == "logic_error"
    assert newest["error"] == bad.text
    assert previous["status"] == "ok" and previous["error"] is None
    only_ok = client.get("/v1/console/executions", params={"status": "ok"}).json()["executions"]
    assert [e["trace_id"] for e in only_ok][:1] == [previous["trace_id"]]
    assert client.get("/v1/console/executions", params={"skill": "other"}).json()["executions"] == []

    detail = client.get(f"/v1/console/executions/{previous['trace_id']}").json()
    names = [span["name"] for span in detail["spans"]]
    assert "POST /v1/skills/{namespace}/{name}/run" in names and "skill_execution" in names
    chat = next(span for span in detail["spans"] if span["name"] == "chat")
    assert chat["attributes"]["gen_ai.request.model"] == "test-model"
    assert chat["attributes"]["gen_ai.usage.input_tokens"] == 7
    assert "gen_ai.input.messages" not in chat["attributes"]  # content capture is off by default
    execution = next(span for span in detail["spans"] if span["name"] == "skill_execution")
    assert chat["parent_id"] == execution["span_id"]
    assert [line["message"] for line in detail["logs"]] == ["skill stdout: writing to Ada in Rome"]


def test_the_ring_keeps_only_the_last_executions(client: httpx.Client) -> None:
    for city in ("A", "B", "C", "D"):
        assert run(client, {"recipient": "x", "address": {"city": city}}).status_code == 200
    executions = client.get("/v1/console/executions").json()["executions"]
    assert len(executions) == 3
    oldest = executions[-1]["trace_id"]
    logs = client.get(f"/v1/console/executions/{oldest}").json()["logs"]
    assert logs[0]["message"] == "skill stdout: writing to x in B"
    assert client.get("/v1/console/executions/0123").status_code == 404
    assert client.get("/v1/console/executions", params={"status": "fine"}).status_code == 400


def test_health_reports_what_the_metrics_count(client: httpx.Client, engine: EngineProcess) -> None:
    health = client.get("/v1/console/health").json()
    metrics = httpx.get(engine.metrics_url).text
    ok_line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("kernel_skill_execution_total{") and 'status="ok"' in line
    )
    assert health["executions"]["ok"] == int(float(ok_line.rsplit(" ", 1)[1]))
    assert health["in_flight"] == 0 and health["queued"] == 0
    assert health["cache"]["items"] == 1 and health["cache"]["bytes"] > 0
    (namespace,) = health["namespaces"]
    assert namespace["name"] == "my-team" and namespace["error"] is None and namespace["updated_at"] > 0
    assert list(namespace["refused"]) == ["Bad Name"]
    assert health["tracing"] == {"exporting": False, "recorded_executions": True}


def test_the_catalogue_route_shows_deployment_state(client: httpx.Client) -> None:
    namespaces = {ns["name"]: ns for ns in client.get("/v1/console/skills").json()["namespaces"]}
    (skill,) = namespaces["my-team"]["skills"]
    (reason,) = namespaces["my-team"]["refused"].values()
    assert 'the skill name "Bad Name" was refused' in reason
    assert skill["name"] == "console-form" and skill["kind"] == "function" and skill["state"] == "loaded"
    assert skill["wit_version"] is not None and skill["size"] > 0
    assert [s["name"] for s in namespaces["test-beta"]["skills"]] == [
        "hello",
        "saboteur",
        "tell_me_a_joke",
        "tool_caller",
    ]


def test_the_openapi_document_describes_the_console_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/console/skills", "/v1/console/executions", "/v1/console/health"):
        assert paths[path]["get"]["tags"] == ["console"]
    assert "/v1/console/executions/{trace_id}" in paths


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, iam: str) -> Iterator[EngineProcess]:
    process = engine_with_skills(tmp_path_factory.mktemp("console-auth"), {}, {"AUTHORIZATION_URL": iam})
    with running(process, timeout=180):
        yield process


def test_with_authentication_pages_are_public_and_data_needs_the_token(guarded: EngineProcess) -> None:
    with httpx.Client(base_url=guarded.url, timeout=30) as client:
        assert client.get("/ui").status_code == 200
        assert client.get("/ui/static/js/api.js").status_code == 200
        for path in ("/v1/console/skills", "/v1/console/executions", "/v1/console/health"):
            response = client.get(path)
            assert (response.status_code, response.text) == (401, "Bearer token expected")
            assert client.get(path, headers={"Authorization": "Bearer bad-token"}).status_code == 403
            assert client.get(path, headers={"Authorization": "Bearer good-token"}).status_code == 200
