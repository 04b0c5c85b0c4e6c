"""A large skill output does not stall other requests (issue 13, item 4, the off-loop part).

While the probe skill echoes a JSON input of 100 000 strings (2.6 MB, close to the largest output
wasmtime-py takes from a guest: 2 796 202 bytes, see the second test), the engine parses and writes back
input and output and gzips the answer; a second client asks `/health` back to back, and its longest round
trip is the stall a user would see. Measured on the shared 2-vCPU test machine: 442 ms before the JSON
work moved to a helper process, 84-161 ms after, 18-27 ms (idle machine) since the `list<u8>` conversion
works in place in 64 KiB steps (runtime/wasmtime_fixes.py). Inside the engine (a faulthandler watchdog
re-armed by the loop every 5 ms) the loop now never waits more than ~25 ms, down from 62 ms; what a client
sees beyond that is the machine's scheduler: under the load of five test runs at once single round trips
reach 110-140 ms. So the bound stays at 250 ms, robust on CI; the numbers are printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills

ITEMS = int(os.environ.get("STALL_ITEMS", "100000"))
STALL_BOUND = 0.25


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path, compiled_cache: Path
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("loop-stall")
    env = {"WASMTIME_CACHE_DIR": str(compiled_cache), "SKILL_TIMEOUT": "120s", "SKILL_MEMORY_LIMIT": "1GiB"}
    process = engine_with_skills(workdir, {"probe": probe_wasm}, env, namespace="TEST").start()
    try:
        with httpx.Client(base_url=process.url, timeout=120) as client:
            assert client.post("/v1/skills/test/probe/run", json={"mode": "echo"}).status_code == 200
        yield process
    finally:
        process.stop()


async def _scenario(engine: EngineProcess, body: bytes) -> tuple[httpx.Response, list[float], float]:
    async with (
        httpx.AsyncClient(base_url=engine.url, timeout=300) as big,
        httpx.AsyncClient(base_url=engine.url, timeout=30) as small,
    ):
        assert (await small.get("/health")).text == "ok"  # connection open before measuring
        started = time.monotonic()
        request = asyncio.create_task(
            big.post(
                "/v1/skills/test/probe/run",
                content=body,
                headers={"content-type": "application/json", "accept-encoding": "gzip"},
            )
        )
        rounds: list[float] = []
        while not request.done():
            sent = time.monotonic()
            assert (await small.get("/health")).text == "ok"
            rounds.append(time.monotonic() - sent)
            await asyncio.sleep(0.01)
        return await request, rounds, time.monotonic() - started


def test_a_large_output_does_not_stall_other_requests(engine: EngineProcess) -> None:
    payload = [f"item-{i:07d}-abcdefghij" for i in range(ITEMS)]
    body = json.dumps({"mode": "echo", "payload": payload}).encode()
    response, rounds, elapsed = asyncio.run(_scenario(engine, body))
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == {"result": payload}
    longest = max(rounds)
    slowest = ", ".join(f"{r * 1000:.0f}" for r in sorted(rounds)[-5:])
    print(f"\n{len(rounds)} /health calls during {elapsed:.1f} s; slowest {slowest} ms")
    assert len(rounds) > 10
    assert longest < STALL_BOUND


def test_an_output_beyond_what_wasmtime_py_takes_is_a_clear_error(engine: EngineProcess) -> None:
    """wasmtime lifts at most 128 MiB of values per call (48 bytes each): a 3.3 MB output is refused."""
    payload = [f"item-{i:07d}-abcdefghij" for i in range(125_000)]
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        response = client.post("/v1/skills/test/probe/run", json={"mode": "echo", "payload": payload})
        assert response.status_code == 503
        assert response.text.endswith(
            "Original error:\n\nThe skill handed the engine more data in one call than wasmtime-py can "
            "take: at most 2796202 values per call, which limits a skill's output to 2796202 bytes."
        )
        # The engine survives and keeps serving.
        assert client.get("/health").text == "ok"
        echo = client.post("/v1/skills/test/probe/run", json={"mode": "echo", "payload": payload[:1000]})
        assert echo.json() == {"result": payload[:1000]}
