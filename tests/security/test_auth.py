"""Authentication against a loopback IAM, through real HTTP against a running engine (engine-spec §7)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.iam_server import IamServer
from tests.support.servers import ThreadedServer, free_port

# PhariaEngine's text, with its newline followed by eight spaces (engine-spec App. B, quirk 12).
UNAVAILABLE_TEXT = (
    "Failed to check token validity against the authorization service. You should try again later,\n"
    "        if the problem persists you may want to contact the operators."
)

AUTHENTICATED = [
    ("GET", "/v1/skills"),
    ("POST", "/v1/skills/my-team/probe/run"),
    ("GET", "/v1/skills/my-team/probe/metadata"),
    ("POST", "/v1/skills/my-team/probe/message-stream"),
    ("GET", "/v1/tools/my-team"),
]
CACHE_TTL = 1.0


@pytest.fixture(scope="module")
def iam() -> Iterator[tuple[IamServer, str]]:
    server = IamServer()
    running = ThreadedServer(server.app).start()
    try:
        yield server, running.url
    finally:
        running.stop()


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    compiled_cache: Path,
    iam: tuple[IamServer, str],
) -> Iterator[EngineProcess]:
    with engine_with_skills(
        tmp_path_factory.mktemp("auth"),
        {"probe": probe_wasm},
        {
            "AUTHORIZATION_URL": iam[1],
            "AUTHORIZATION_CACHE_TTL": f"{CACHE_TTL}s",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
        },
    ) as process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=60) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def send(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    body = {"mode": "echo", "payload": 7} if method == "POST" else None
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_missing_token_is_401(client: httpx.Client, method: str, path: str) -> None:
    response = send(client, method, path, {})
    assert response.status_code == 401
    assert response.text == "Bearer token expected"


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_rejected_token_is_403(client: httpx.Client, method: str, path: str) -> None:
    response = send(client, method, path, bearer("bad-1"))
    assert response.status_code == 403
    assert response.text == "Bearer token invalid"


def test_token_without_the_permission_is_403(client: httpx.Client) -> None:
    response = client.get("/v1/skills", headers=bearer("noperm-1"))
    assert response.status_code == 403
    assert response.text == "Bearer token invalid"


@pytest.mark.parametrize("token", ["broken-1", "garbage-1"])
def test_iam_failure_is_500_with_the_documented_text(client: httpx.Client, token: str) -> None:
    response = client.get("/v1/skills", headers=bearer(token))
    assert response.status_code == 500
    assert response.text == UNAVAILABLE_TEXT
    assert "\n        if the problem persists" in response.text


def test_valid_token_runs_the_skill_and_iam_sees_the_exact_request(
    client: httpx.Client, iam: tuple[IamServer, str]
) -> None:
    server, _ = iam
    before = len(server.requests)
    response = client.post(
        "/v1/skills/my-team/probe/run", json={"mode": "echo", "payload": 1}, headers=bearer("good-exact")
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"result": 1}
    sent = server.requests[before:]
    assert len(sent) == 1
    assert sent[0]["method"] == "POST"
    assert sent[0]["path"] == "/check_user"
    assert sent[0]["headers"]["authorization"] == "Bearer good-exact"
    assert sent[0]["headers"]["content-type"] == "application/json"
    assert json.loads(sent[0]["body"]) == {"permissions": [{"permission": "KernelAccess"}]}


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_valid_token_reaches_every_authenticated_route(client: httpx.Client, method: str, path: str) -> None:
    response = send(client, method, path, bearer("good-routes"))
    assert response.status_code not in (400, 401, 403, 500), response.text


@pytest.mark.parametrize("header", ["Basic eHl6", "Bearer", "token abc"])
def test_non_bearer_header_is_400(client: httpx.Client, iam: tuple[IamServer, str], header: str) -> None:
    server, _ = iam
    before = len(server.requests)
    response = client.get("/v1/skills", headers={"authorization": header})
    assert response.status_code == 400
    assert response.text == "Header of type `authorization` was invalid"
    assert len(server.requests) == before


def test_scheme_is_case_insensitive(client: httpx.Client) -> None:
    assert client.get("/v1/skills", headers={"authorization": "bEaReR good-case"}).status_code == 200


def test_public_routes_unknown_paths_and_wrong_methods_never_check(
    client: httpx.Client, iam: tuple[IamServer, str]
) -> None:
    server, _ = iam
    before = len(server.requests)
    assert client.get("/health").status_code == 200
    assert client.get("/health", headers={"authorization": "Basic eHl6"}).status_code == 200
    missing = client.get("/v1/nothing-here")
    assert (missing.status_code, missing.content) == (404, b"")
    wrong = client.delete("/v1/skills")
    assert (wrong.status_code, wrong.content) == (405, b"")
    assert len(server.requests) == before


def test_successful_checks_are_cached_briefly(client: httpx.Client, iam: tuple[IamServer, str]) -> None:
    server, _ = iam
    before = len(server.requests)
    for _ in range(5):
        assert client.get("/v1/skills", headers=bearer("good-cached")).status_code == 200
    assert len(server.requests) == before + 1
    time.sleep(CACHE_TTL + 0.2)
    assert client.get("/v1/skills", headers=bearer("good-cached")).status_code == 200
    assert len(server.requests) == before + 2


def test_rejections_are_not_cached(client: httpx.Client, iam: tuple[IamServer, str]) -> None:
    server, _ = iam
    before = len(server.requests)
    for _ in range(3):
        assert client.get("/v1/skills", headers=bearer("bad-again")).status_code == 403
    assert len(server.requests) == before + 3


def test_a_burst_with_one_token_asks_the_iam_once(engine: EngineProcess, iam: tuple[IamServer, str]) -> None:
    server, _ = iam
    before = len(server.requests)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=engine.url, timeout=30) as client:
            responses = await asyncio.gather(
                *(client.get("/v1/skills", headers=bearer("slow-burst")) for _ in range(20))
            )
            return [r.status_code for r in responses]

    assert asyncio.run(burst()) == [200] * 20
    assert len(server.requests) == before + 1


def test_tokens_never_appear_in_the_logs(client: httpx.Client, engine: EngineProcess) -> None:
    for token in ("good-secret-x1", "bad-secret-x2", "broken-secret-x3"):
        client.post("/v1/skills/my-team/probe/run", json={"mode": "echo"}, headers=bearer(token))
    logs = engine.logs()
    assert "/v1/skills/my-team/probe/run" in logs  # the access log is there
    assert "secret-x" not in logs


def test_unreachable_iam_is_500_and_health_stays_up(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    process = engine_with_skills(
        tmp_path,
        {"probe": probe_wasm},
        {"AUTHORIZATION_URL": closed, "WASMTIME_CACHE_DIR": str(compiled_cache)},
    ).start()
    try:
        with httpx.Client(base_url=process.url, timeout=30) as client:
            response = client.get("/v1/skills", headers=bearer("good-1"))
            assert response.status_code == 500
            assert response.text == UNAVAILABLE_TEXT
            assert client.get("/v1/skills").status_code == 401
            assert client.get("/health").text == "ok"
    finally:
        process.stop()


def test_document_management_routes_keep_their_own_admin_token(
    client: httpx.Client, iam: tuple[IamServer, str]
) -> None:
    server, _ = iam
    before = len(server.requests)
    response = client.get("/v1/documents/docs/collection", headers=bearer("good-admin"))
    assert response.status_code == 403
    assert response.text.startswith("The document management API is disabled")
    assert len(server.requests) == before


def test_hanging_iam_is_500_after_the_timeout(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path, iam: tuple[IamServer, str]
) -> None:
    process = engine_with_skills(
        tmp_path,
        {"probe": probe_wasm},
        {
            "AUTHORIZATION_URL": iam[1],
            "AUTHORIZATION_TIMEOUT": "1s",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
        },
    ).start()
    try:
        with httpx.Client(base_url=process.url, timeout=30) as client:
            started = time.monotonic()
            response = client.get("/v1/skills", headers=bearer("hang-1"))
            assert response.status_code == 500
            assert response.text == UNAVAILABLE_TEXT
            assert 0.9 < time.monotonic() - started < 5
            assert client.get("/v1/skills", headers=bearer("good-after-hang")).status_code == 200
    finally:
        process.stop()
