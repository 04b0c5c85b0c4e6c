"""Guests stuck in WASI cannot take capacity away (issue 13, item 5).

The SDK-built probe skill sleeps (`time.sleep`, a WASI poll) far past `SKILL_TIMEOUT`; twice
`MAX_CONCURRENT_SKILLS` such calls are all answered with the timeout text, their slots are given back,
ordinary calls then run at full concurrency, and past `MAX_STUCK_SKILLS` the engine reports unhealthy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills

SLOTS = 2
TIMEOUT_TEXT = "Original error:\n\nMaximum skill execution time reached."
FOREVER = {"mode": "sleep", "n": 10**9}


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path, compiled_cache: Path
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("stuck-guests")
    process = engine_with_skills(
        workdir,
        {"probe": probe_wasm},
        {
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "MAX_CONCURRENT_SKILLS": str(SLOTS),
            "MAX_STUCK_SKILLS": str(2 * SLOTS),
            "MAX_QUEUED_SKILLS": "16",
            "SKILL_QUEUE_TIMEOUT": "20s",
            "SKILL_TIMEOUT": "2s",
        },
        namespace="TEST",
    ).start()
    try:
        with httpx.Client(base_url=process.url, timeout=120) as client:
            assert client.post("/v1/skills/test/probe/run", json={"mode": "echo"}).status_code == 200
        yield process
    finally:
        process.stop()


async def _run_all(engine: EngineProcess, bodies: list[dict[str, object]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=engine.url, timeout=60) as client:
        return list(
            await asyncio.gather(*(client.post("/v1/skills/test/probe/run", json=body) for body in bodies))
        )


def _stuck_metric(engine: EngineProcess) -> float:
    for line in httpx.get(engine.metrics_url, timeout=10).text.splitlines():
        if line.startswith("kernel_skill_threads_stuck "):
            return float(line.split()[1])
    raise AssertionError("kernel_skill_threads_stuck not exported")


def _wait_for_stuck(engine: EngineProcess, count: float, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while (seen := _stuck_metric(engine)) != count and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def test_a_guest_whose_sleep_ends_frees_its_thread(engine: EngineProcess) -> None:
    """Runs first: a sleep of 6 s past a 2 s timeout is answered at the deadline, counted as stuck, and
    no longer counted once the sleep returns and the thread ends (WASI sleeps cannot be interrupted,
    docs/decisions/0010-guests-stuck-in-wasi.md)."""
    started = time.monotonic()
    [response] = asyncio.run(_run_all(engine, [{"mode": "sleep", "n": 6}]))
    answered = time.monotonic() - started
    assert response.status_code == 503
    assert response.text.endswith(TIMEOUT_TEXT)
    assert answered < 3.5
    assert _wait_for_stuck(engine, 1, 10) == 1
    assert _wait_for_stuck(engine, 0, 20) == 0
    assert httpx.get(f"{engine.url}/health?detail=true", timeout=10).json()["stuck_skill_threads"] == 0


def test_stuck_guests_give_their_slots_back_up_to_the_bound(engine: EngineProcess) -> None:
    sleepers = asyncio.run(_run_all(engine, [FOREVER] * (2 * SLOTS)))
    assert [r.status_code for r in sleepers] == [503] * (2 * SLOTS)
    assert all(r.text.endswith(TIMEOUT_TEXT) for r in sleepers)

    time.sleep(3)
    health = httpx.get(f"{engine.url}/health?detail=true", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "stuck_skill_threads": 4, "max_stuck_skill_threads": 4}
    assert httpx.get(f"{engine.url}/health", timeout=10).text == "ok"
    assert _stuck_metric(engine) == 4

    # Full concurrency: two one-second sleeps at once take about one second, not two.
    started = time.monotonic()
    ordinary = asyncio.run(_run_all(engine, [{"mode": "sleep", "n": 1}] * SLOTS))
    elapsed = time.monotonic() - started
    assert [r.status_code for r in ordinary] == [200] * SLOTS, [r.text for r in ordinary]
    assert elapsed < 1.9

    # One more beyond MAX_STUCK_SKILLS keeps its slot, and the engine asks to be replaced.
    [extra] = asyncio.run(_run_all(engine, [FOREVER]))
    assert extra.status_code == 503
    assert extra.text.endswith(TIMEOUT_TEXT)
    time.sleep(1)
    unhealthy = httpx.get(f"{engine.url}/health", timeout=10)
    assert unhealthy.status_code == 503
    assert unhealthy.text == (
        "unhealthy: 5 skill threads are stuck in WASI, more than the 4 allowed by MAX_STUCK_SKILLS"
    )
    detail = httpx.get(f"{engine.url}/health?detail=true", timeout=10)
    assert (detail.status_code, detail.json()["status"]) == (503, "unhealthy")
    assert _stuck_metric(engine) == 5
    # The remaining slot still serves.
    [echo] = asyncio.run(_run_all(engine, [{"mode": "echo", "payload": 1}]))
    assert echo.status_code == 200
