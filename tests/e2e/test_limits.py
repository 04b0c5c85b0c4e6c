"""Per-invocation limits and isolation between invocations, through real HTTP.

One engine with a short `SKILL_TIMEOUT` and no inference backend; the 50 MiB input gets its own engine
with the default timeout, because a guest needs several seconds to parse that much JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, run_engine_once

TIMEOUT_TEXT = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\nMaximum skill execution time reached."
)


def start_engine(workdir: Path, probe_wasm: Path, compiled_cache: Path, **env: str) -> EngineProcess:
    skills = workdir / "skills"
    skills.mkdir(parents=True)
    shutil.copy(probe_wasm, skills / "probe.wasm")
    # No namespace configured at all: the engine serves `dev` from ./skills of its working directory.
    return EngineProcess(workdir, {"WASMTIME_CACHE_DIR": str(compiled_cache), **env}).start()


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path, compiled_cache: Path
) -> Iterator[httpx.Client]:
    engine = start_engine(
        tmp_path_factory.mktemp("limited"),
        probe_wasm,
        compiled_cache,
        SKILL_TIMEOUT="2s",
        SKILL_MEMORY_LIMIT="128MiB",
    )
    try:
        with httpx.Client(base_url=engine.url, timeout=120) as client:
            assert client.post("/v1/skills/dev/probe/run", json={"mode": "echo"}).status_code == 200
            yield client
    finally:
        engine.stop()


def test_busy_loop_is_stopped_at_the_timeout(limited: httpx.Client) -> None:
    started = time.monotonic()
    response = limited.post("/v1/skills/dev/probe/run", json={"mode": "busy"})
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.text == TIMEOUT_TEXT
    assert elapsed < 10


def test_sleeping_guest_is_answered_at_the_timeout(limited: httpx.Client) -> None:
    started = time.monotonic()
    response = limited.post("/v1/skills/dev/probe/run", json={"mode": "sleep", "n": 30})
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.text == TIMEOUT_TEXT
    assert elapsed < 10


def test_unbounded_allocation_is_reported_by_the_guest(limited: httpx.Client) -> None:
    response = limited.post("/v1/skills/dev/probe/run", json={"mode": "alloc"})
    assert response.status_code == 400
    assert "MemoryError" in response.text
    assert limited.post("/v1/skills/dev/probe/run", json={"mode": "echo", "payload": 1}).json() == {
        "result": 1
    }


def test_no_inference_backend_configured(limited: httpx.Client) -> None:
    response = limited.post("/v1/skills/dev/probe/run", json={"mode": "chat", "text": "hi"})
    assert response.status_code == 503
    assert response.text.endswith(
        "No inference backend configured. The Kernel is running without inference capabilities. To enable "
        "inference capabilities, please ask your operator to configure the Inference URL in the Kernel "
        "configuration."
    )


def test_two_looping_skills_do_not_hold_up_a_third_request(limited: httpx.Client) -> None:
    async def scenario() -> tuple[list[int], int, float]:
        async with httpx.AsyncClient(base_url=str(limited.base_url), timeout=60) as client:
            loops = [
                asyncio.create_task(client.post("/v1/skills/dev/probe/run", json={"mode": "busy"}))
                for _ in range(2)
            ]
            await asyncio.sleep(0.5)
            started = time.monotonic()
            third = await client.post("/v1/skills/dev/probe/run", json={"mode": "echo", "payload": 3})
            latency = time.monotonic() - started
            done = await asyncio.gather(*loops)
            return [r.status_code for r in done], third.status_code, latency

    loop_statuses, third_status, latency = asyncio.run(scenario())
    assert third_status == 200
    assert loop_statuses == [503, 503]
    # The loops still run for ~1.5 s after the third call started; it must not wait for them.
    assert latency < 1.0


def test_memory_limit_below_32_mib_stops_start_up(tmp_path: Path) -> None:
    result = run_engine_once(tmp_path, {"SKILL_MEMORY_LIMIT": "16MiB", "KERNEL_ADDRESS": "127.0.0.1:0"})
    assert result.returncode != 0
    assert "SKILL_MEMORY_LIMIT" in result.stderr
    assert "32MiB" in result.stderr


def test_invalid_duration_names_the_key(tmp_path: Path) -> None:
    result = run_engine_once(tmp_path, {"SKILL_TIMEOUT": "soon", "KERNEL_ADDRESS": "127.0.0.1:0"})
    assert result.returncode != 0
    assert "SKILL_TIMEOUT" in result.stderr


def test_50_mib_input_works_while_other_requests_are_served(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path
) -> None:
    engine = start_engine(tmp_path, probe_wasm, compiled_cache)
    text = "x" * (50 * 1024 * 1024 - 100)
    body = json.dumps({"mode": "size", "text": text}).encode()
    try:

        async def scenario() -> tuple[httpx.Response, list[float]]:
            async with httpx.AsyncClient(base_url=engine.url, timeout=300) as client:
                big = asyncio.create_task(
                    client.post(
                        "/v1/skills/dev/probe/run", content=body, headers={"content-type": "application/json"}
                    )
                )
                latencies = []
                while not big.done():
                    started = time.monotonic()
                    small = await client.post("/v1/skills/dev/probe/run", json={"mode": "echo", "payload": 1})
                    assert small.status_code == 200
                    latencies.append(time.monotonic() - started)
                    await asyncio.sleep(0.2)
                return await big, latencies

        response, latencies = asyncio.run(scenario())
        assert response.status_code == 200, response.text[:500]
        assert response.json() == {"result": len(text)}
        assert len(latencies) >= 3
        assert max(latencies) < 5, f"small requests stalled for {max(latencies):.1f} s"
    finally:
        engine.stop()
