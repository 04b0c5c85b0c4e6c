"""Overload (429), output cap, CORS and compression, through real HTTP against one engine process."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running

OUTPUT_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path, compiled_cache: Path
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("http-layer")
    other = workdir / "other"
    other.mkdir()
    (other / "probe.wasm").write_bytes(probe_wasm.read_bytes())
    process = engine_with_skills(
        workdir,
        {"probe": probe_wasm},
        {
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "MAX_CONCURRENT_SKILLS": "3",
            "MAX_CONCURRENT_SKILLS_PER_NAMESPACE": "2",
            "MAX_QUEUED_SKILLS": "1",
            "SKILL_QUEUE_TIMEOUT": "3s",
            "SKILL_OUTPUT_LIMIT": str(OUTPUT_LIMIT),
            "NAMESPACES__OTHER__DIRECTORY": str(other),
        },
        namespace="MINE",
    )
    warm = [WarmUp.run(namespace, "probe", {"mode": "echo"}) for namespace in ("mine", "other")]
    with running(process, warm, warm_timeout=120):
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=60) as client:
        yield client


def run_path(namespace: str) -> str:
    return f"/v1/skills/{namespace}/probe/run"


async def _post(client: httpx.AsyncClient, namespace: str, body: dict[str, object]) -> httpx.Response:
    return await client.post(run_path(namespace), json=body)


def test_namespace_cap_queues_then_rejects_while_other_namespaces_run(engine: EngineProcess) -> None:
    async def scenario() -> tuple[list[httpx.Response], httpx.Response, httpx.Response, float]:
        async with httpx.AsyncClient(base_url=engine.url, timeout=60) as client:
            sleepers = [
                asyncio.create_task(_post(client, "mine", {"mode": "sleep", "n": 6})) for _ in range(2)
            ]
            await asyncio.sleep(1.0)
            started = time.monotonic()
            queued = asyncio.create_task(_post(client, "mine", {"mode": "echo", "payload": 1}))
            other = await _post(client, "other", {"mode": "echo", "payload": 2})
            rejected = await queued
            waited = time.monotonic() - started
            return list(await asyncio.gather(*sleepers)), other, rejected, waited

    sleepers, other, rejected, waited = asyncio.run(scenario())
    assert [r.status_code for r in sleepers] == [200, 200]
    assert other.status_code == 200
    assert rejected.status_code == 429
    assert rejected.headers["retry-after"] == "1"
    assert rejected.text.startswith("The Kernel is currently overloaded: namespace 'mine' already runs its")
    assert "no slot became free within 3 s" in rejected.text
    assert 2.8 < waited < 5.5


def test_global_cap_queue_full_is_429_at_once_and_queued_request_runs_when_a_slot_frees(
    engine: EngineProcess,
) -> None:
    async def scenario() -> tuple[httpx.Response, float, httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=engine.url, timeout=60) as client:
            busy = [
                asyncio.create_task(_post(client, "mine", {"mode": "sleep", "n": 3})),
                asyncio.create_task(_post(client, "mine", {"mode": "sleep", "n": 7})),
                asyncio.create_task(_post(client, "other", {"mode": "sleep", "n": 7})),
            ]
            await asyncio.sleep(1.5)
            queued = asyncio.create_task(_post(client, "other", {"mode": "echo", "payload": 3}))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            full = await _post(client, "other", {"mode": "echo", "payload": 4})
            immediate = time.monotonic() - started
            stream = await client.post("/v1/skills/other/probe/message-stream", json={})
            served = await queued
            await asyncio.gather(*busy)
            return full, immediate, served, stream

    full, immediate, served, stream = asyncio.run(scenario())
    assert stream.status_code == 429  # before the stream opens
    assert stream.headers["retry-after"] == "1"
    assert stream.text == full.text
    assert full.status_code == 429
    assert full.headers["retry-after"] == "1"
    assert "all 3 skill execution slots are busy and 1 requests are already waiting" in full.text
    assert immediate < 0.5
    assert served.status_code == 200
    assert served.json() == {"result": 3}


def test_after_overload_everything_is_served_again(client: httpx.Client) -> None:
    for namespace in ("mine", "other"):
        assert client.post(run_path(namespace), json={"mode": "echo", "payload": 5}).json() == {"result": 5}


def test_output_above_the_limit_is_refused(client: httpx.Client) -> None:
    response = client.post(run_path("mine"), json={"mode": "echo", "payload": "x" * (OUTPUT_LIMIT + 10)})
    assert response.status_code == 503
    assert response.text.endswith(f"exceeds the limit of {OUTPUT_LIMIT} bytes.")
    small = client.post(run_path("mine"), json={"mode": "echo", "payload": "x" * 1000})
    assert small.status_code == 200


def test_cors_preflight_mirrors_origin_method_and_headers(client: httpx.Client) -> None:
    response = client.options(
        run_path("mine"),
        headers={
            "origin": "https://app.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "authorization,content-type"


def test_cors_headers_on_actual_requests_and_errors(client: httpx.Client) -> None:
    origin = {"origin": "http://localhost:3000"}
    ok = client.post(run_path("mine"), json={"mode": "echo"}, headers=origin)
    error = client.post(
        run_path("mine"), content=b"{", headers={**origin, "content-type": "application/json"}
    )
    for response in (ok, error):
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "origin" in response.headers["vary"].lower()
    assert "access-control-expose-headers" not in ok.headers


def test_responses_are_gzipped_on_request_but_streams_are_not(client: httpx.Client) -> None:
    metadata = client.get("/v1/skills/mine/probe/metadata", headers={"accept-encoding": "gzip"})
    assert metadata.status_code == 200
    assert metadata.headers["content-encoding"] == "gzip"
    assert metadata.json()["skill_type"] == "function"  # httpx decodes it
    plain = client.get("/v1/skills/mine/probe/metadata", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    tiny = client.get("/health", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in tiny.headers  # below 32 bytes
    with client.stream(
        "POST", "/v1/skills/mine/probe/message-stream", json={}, headers={"accept-encoding": "gzip"}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers
        assert b"event: error" in stream.read()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", lambda b: zlib.compress(b)[2:-4])],
)
def test_compressed_request_bodies_are_decoded(client: httpx.Client, encoding: str, compress: object) -> None:
    assert callable(compress)
    body = compress(b'{"mode":"echo","payload":"compressed"}')
    response = client.post(
        run_path("mine"),
        content=body,
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "compressed"}


def test_bad_compressed_bodies_are_refused(client: httpx.Client) -> None:
    headers = {"content-type": "application/json"}
    unknown = client.post(run_path("mine"), content=b"xx", headers={**headers, "content-encoding": "br"})
    assert (unknown.status_code, unknown.text) == (415, "Unsupported `Content-Encoding`: br")
    broken = client.post(
        run_path("mine"), content=b"not gzip", headers={**headers, "content-encoding": "gzip"}
    )
    assert (broken.status_code, broken.text) == (400, "Failed to decompress the request body")
    bomb = gzip.compress(b"0" * (51 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 1024 * 1024
    exploded = client.post(run_path("mine"), content=bomb, headers={**headers, "content-encoding": "gzip"})
    assert exploded.status_code == 413
    assert exploded.text == "Failed to buffer the request body: length limit exceeded"
