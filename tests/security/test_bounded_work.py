"""Nothing grows without bound on a caller's say-so (issue 13, item 6, the CSI and input-bytes parts).

CSI batches run at most `CSI_BATCH_CONCURRENCY` requests at once, and all batches together at most
`CSI_CONCURRENCY` (a loopback backend counts the requests it holds at once); skill inputs share the
`MAX_INPUT_BYTES_IN_FLIGHT` budget, so large inputs queue instead of running side by side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from skill_engine.runtime.admission import Overloaded
from skill_engine.runtime.budget import ByteBudget
from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running
from tests.support.servers import ThreadedServer

PER_BATCH = 3
ENGINE_WIDE = 5


class CountingBackend:
    """`POST /complete` that holds each request for a moment and records the most it held at once."""

    def __init__(self) -> None:
        self.active = 0
        self.most = 0
        self.total = 0
        self.app = Starlette(routes=[Route("/complete", self.complete, methods=["POST"])])

    async def complete(self, request: Request) -> JSONResponse:
        await request.body()
        self.active += 1
        self.total += 1
        self.most = max(self.most, self.active)
        try:
            await asyncio.sleep(0.2)
        finally:
            self.active -= 1
        return JSONResponse(
            {
                "completions": [{"completion": " ok", "finish_reason": "maximum_tokens"}],
                "num_tokens_prompt_total": 1,
                "num_tokens_generated": 1,
            }
        )

    def reset(self) -> None:
        self.most = self.total = 0


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[CountingBackend, str]]:
    counting = CountingBackend()
    server = ThreadedServer(counting.app).start()
    try:
        yield counting, server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def csi_engine(
    tmp_path_factory: pytest.TempPathFactory, backend: tuple[CountingBackend, str]
) -> Iterator[EngineProcess]:
    env = {
        "INFERENCE_URL": backend[1],
        "CSI_BATCH_CONCURRENCY": str(PER_BATCH),
        "CSI_CONCURRENCY": str(ENGINE_WIDE),
    }
    with EngineProcess(tmp_path_factory.mktemp("engine-csi-bounds"), env) as engine:
        yield engine


def completions(n: int) -> list[dict[str, Any]]:
    params = {"return_special_tokens": False, "stop": [], "logprobs": "no"}
    return [{"model": "m", "prompt": f"p{i}", "params": params} for i in range(n)]


async def _batches(engine: EngineProcess, count: int, size: int) -> list[httpx.Response]:
    headers = {"Authorization": "Bearer token"}
    async with httpx.AsyncClient(base_url=engine.url, timeout=60, headers=headers) as client:
        return list(
            await asyncio.gather(
                *(client.post("/csi/v1/complete", json=completions(size)) for _ in range(count))
            )
        )


def test_one_batch_runs_at_most_the_per_batch_bound_at_once(
    csi_engine: EngineProcess, backend: tuple[CountingBackend, str]
) -> None:
    counting = backend[0]
    counting.reset()
    [response] = asyncio.run(_batches(csi_engine, 1, 12))
    assert response.status_code == 200, response.text
    assert [c["text"] for c in response.json()] == [" ok"] * 12
    assert counting.total == 12
    assert counting.most == PER_BATCH


def test_all_batches_together_run_at_most_the_engine_bound(
    csi_engine: EngineProcess, backend: tuple[CountingBackend, str]
) -> None:
    counting = backend[0]
    counting.reset()
    responses = asyncio.run(_batches(csi_engine, 4, 12))
    assert [r.status_code for r in responses] == [200] * 4
    assert counting.total == 48
    assert counting.most == ENGINE_WIDE


@pytest.fixture(scope="module")
def budget_engine(
    tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path, compiled_cache: Path
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("engine-input-budget")
    env = {
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "MAX_CONCURRENT_SKILLS": "4",
        "MAX_INPUT_BYTES_IN_FLIGHT": "1MiB",
        "SKILL_QUEUE_TIMEOUT": "30s",
    }
    process = engine_with_skills(workdir, {"probe": probe_wasm}, env, namespace="TEST")
    with running(process, [WarmUp.run("test", "probe", {"mode": "echo"})], warm_timeout=120):
        yield process


async def _sleeps(engine: EngineProcess, count: int, payload: str) -> tuple[list[int], float]:
    body = {"mode": "sleep", "n": 1, "payload": payload}
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=engine.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(client.post("/v1/skills/test/probe/run", json=body) for _ in range(count))
        )
    return [r.status_code for r in responses], time.monotonic() - started


def test_large_inputs_queue_for_the_byte_budget(budget_engine: EngineProcess) -> None:
    statuses, small = asyncio.run(_sleeps(budget_engine, 3, "x"))
    assert statuses == [200] * 3
    assert small < 2.5  # side by side
    statuses, large = asyncio.run(_sleeps(budget_engine, 3, "x" * 700_000))
    assert statuses == [200] * 3
    assert large >= 3.0  # 3 x 700 kB do not fit a 1 MiB budget together: one after the other


def test_byte_budget_waits_in_order_and_gives_up_with_429() -> None:
    async def scenario() -> None:
        budget = ByteBudget(100, wait=0.5)
        first = await budget.acquire(80)
        waiting = asyncio.create_task(budget.acquire(50))
        await asyncio.sleep(0.05)
        small = asyncio.create_task(budget.acquire(10))  # would fit, but waits its turn behind 50
        await asyncio.sleep(0.05)
        assert not waiting.done() and not small.done()
        budget.release(first)
        assert (await waiting, await small) == (50, 10)
        budget.release(50)
        with pytest.raises(Overloaded, match=r"^The Kernel is currently overloaded: 10 bytes of skill input"):
            await budget.acquire(100)
        budget.release(10)
        assert await budget.acquire(10_000) == 100  # larger than the budget: runs alone
        budget.release(100)
        assert budget.in_use == 0

    asyncio.run(scenario())
