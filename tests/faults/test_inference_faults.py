"""Inference backend faults, through a real engine and a loopback backend that fails on purpose.

Documented reactions (engine-spec §3.4, docs/security.md): 408/409/429/5xx and connection failures are
retried twice with backoff, then the invocation fails with a 503 naming the backend's error; malformed
answers fail at once with a clear text; a hanging backend is cut off at the skill's deadline; a stream
dropped mid-way ends the message stream with an error event. Nothing is left hanging: after every fault the
engine answers normally and no upstream request stays open.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running
from tests.support.faulty_backend import FaultyBackend
from tests.support.servers import ThreadedServer, free_port

RUNTIME_PREFIX = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[FaultyBackend, str]]:
    faulty = FaultyBackend()
    server = ThreadedServer(faulty.app).start()
    try:
        yield faulty, f"{server.url}/v1"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    streamer_wasm: Path,
    compiled_cache: Path,
    backend: tuple[FaultyBackend, str],
) -> Iterator[EngineProcess]:
    with engine_with_skills(
        tmp_path_factory.mktemp("faults"),
        {"probe": probe_wasm, "streamer": streamer_wasm},
        {
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "OPENAI_INFERENCE__URL": backend[1],
            "OPENAI_INFERENCE__TOKEN": "backend-token",
            "SKILL_TIMEOUT": f"{TIMEOUT}s",
        },
    ) as process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=60) as client:
        assert chat(client, "test-model", "warm").status_code == 200
        yield client


def chat(client: httpx.Client, model: str, text: str) -> httpx.Response:
    return client.post("/v1/skills/my-team/probe/run", json={"mode": "chat", "model": model, "text": text})


def assert_healthy(client: httpx.Client) -> None:
    response = chat(client, "test-model", "still fine")
    assert response.status_code == 200
    assert response.json() == {"result": "echo: still fine"}


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_persistent_failures_are_retried_twice_then_reported(
    client: httpx.Client, backend: tuple[FaultyBackend, str], status: int
) -> None:
    faulty, _ = backend
    started = time.monotonic()
    response = chat(client, f"status-{status}", f"persistent {status}")
    assert response.status_code == 503
    assert response.text.startswith(RUNTIME_PREFIX)
    assert f"{status}: injected failure {status}" in response.text
    assert faulty.attempts[f"status-{status}:persistent {status}"] == 3
    assert time.monotonic() - started < TIMEOUT
    assert_healthy(client)


@pytest.mark.parametrize("code", [429, 503])
def test_transient_failures_are_retried_transparently(
    client: httpx.Client, backend: tuple[FaultyBackend, str], code: int
) -> None:
    faulty, _ = backend
    response = chat(client, f"flaky-2-{code}", f"transient {code}")
    assert response.status_code == 200
    assert response.json() == {"result": f"echo: transient {code}"}
    assert faulty.attempts[f"flaky-2-{code}:transient {code}"] == 3


def test_client_errors_are_not_retried(client: httpx.Client, backend: tuple[FaultyBackend, str]) -> None:
    faulty, _ = backend
    response = chat(client, "status-400", "bad request")
    assert response.status_code == 503
    assert "400: injected failure 400" in response.text
    assert faulty.attempts["status-400:bad request"] == 1


@pytest.mark.parametrize(
    ("model", "detail"),
    [
        ("malformed", "Error while calling OpenAI chat completion API: invalid JSON in response"),
        ("wrong-shape", "Expected at least one choice in the chat completion response."),
    ],
)
def test_malformed_answers_fail_clearly(client: httpx.Client, model: str, detail: str) -> None:
    response = chat(client, model, "shape")
    assert response.status_code == 503
    assert response.text == RUNTIME_PREFIX + detail
    assert_healthy(client)


def test_a_hanging_backend_is_cut_off_at_the_deadline(
    client: httpx.Client, backend: tuple[FaultyBackend, str]
) -> None:
    faulty, _ = backend
    started = time.monotonic()
    response = chat(client, "hang", "anyone there?")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.text == RUNTIME_PREFIX + "Maximum skill execution time reached."
    assert TIMEOUT - 0.5 < elapsed < TIMEOUT + 3
    deadline = time.monotonic() + 5
    while faulty.hanging and time.monotonic() < deadline:
        time.sleep(0.05)
    assert faulty.hanging == 0, "the upstream request was left open"
    assert_healthy(client)


def test_a_stream_dropped_mid_way_ends_with_an_error_event(client: httpx.Client) -> None:
    response = client.post(
        "/v1/skills/my-team/streamer/message-stream",
        json={"mode": "chat_stream", "model": "drop-stream", "text": "one two three four"},
    )
    assert response.status_code == 200
    events = [block for block in response.text.split("\n\n") if block]
    assert events[0] == 'event: message\ndata: {"type":"begin"}'
    assert any('"type":"append"' in block for block in events)
    assert events[-1].startswith("event: error")
    assert '"type":"end"' not in response.text
    assert_healthy(client)


def test_an_unreachable_backend_is_retried_then_reported(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path
) -> None:
    process = engine_with_skills(
        tmp_path,
        {"probe": probe_wasm},
        {
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "OPENAI_INFERENCE__URL": f"http://127.0.0.1:{free_port()}/v1",
            "OPENAI_INFERENCE__TOKEN": "backend-token",
        },
    )
    with (
        running(process, [WarmUp.metadata("my-team", "probe")]),  # compiled: the timed call only runs
        httpx.Client(base_url=process.url, timeout=60) as client,
    ):
        started = time.monotonic()
        response = chat(client, "test-model", "hello?")
        assert response.status_code == 503
        assert response.text.startswith(RUNTIME_PREFIX + "Error while calling OpenAI chat completion API")
        assert "ConnectError" in response.text
        assert 1.0 < time.monotonic() - started < 10
        assert client.get("/health").text == "ok"
