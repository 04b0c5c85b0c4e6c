"""Weighted fair admission across namespaces, measured through real HTTP (docs/governance.md).

Slow requests wait on a loopback OpenAI server (`slow-<s>` models), so they hold execution slots without
using CPU; bounded in count and time, loopback only. With 4 slots the default `RESERVED_SKILL_SLOTS` is 1:
one namespace holds at most 3 of them while others are configured.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess
from tests.support.openai_server import OpenAIServer

SLOTS = 4


def engine_for(
    workdir: Path, probe_wasm: Path, compiled_cache: Path, openai_url: str, weights: dict[str, int]
) -> EngineProcess:
    env = {
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "OPENAI_INFERENCE__URL": openai_url,
        "OPENAI_INFERENCE__TOKEN": "backend-token",
        "MAX_CONCURRENT_SKILLS": str(SLOTS),
        "MAX_QUEUED_SKILLS": "64",
        "SKILL_QUEUE_TIMEOUT": "60s",
    }
    for namespace, weight in weights.items():
        directory = workdir / namespace
        directory.mkdir(parents=True)
        shutil.copy(probe_wasm, directory / "probe.wasm")
        env[f"NAMESPACES__{namespace.upper()}__DIRECTORY"] = str(directory)
        env[f"NAMESPACES__{namespace.upper()}__LIMITS__WEIGHT"] = str(weight)
    return EngineProcess(workdir, env).start(timeout=120)


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    process = engine_for(
        tmp_path_factory.mktemp("fair"),
        probe_wasm,
        compiled_cache,
        openai[1],
        {"flood": 1, "trickle": 1, "heavy": 3},
    )
    try:
        with httpx.Client(base_url=process.url, timeout=120) as client:
            for namespace in ("flood", "trickle", "heavy"):  # compiled and cached before measuring
                assert (
                    client.post(f"/v1/skills/{namespace}/probe/run", json={"mode": "echo"}).status_code == 200
                )
        yield process
    finally:
        process.stop()


def slow(seconds: float) -> dict[str, object]:
    return {"mode": "chat", "model": f"slow-{seconds:g}", "text": "hi", "n": 4}


async def timed(
    client: httpx.AsyncClient, namespace: str, body: dict[str, object]
) -> tuple[int, float, float]:
    started = time.monotonic()
    response = await client.post(f"/v1/skills/{namespace}/probe/run", json=body)
    return response.status_code, time.monotonic() - started, time.monotonic()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def test_a_flooding_namespace_does_not_starve_a_trickle(engine: EngineProcess) -> None:
    async def scenario() -> tuple[
        list[float], float, list[tuple[int, float, float]], list[tuple[int, float, float]]
    ]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=engine.url, timeout=120, limits=limits) as client:
            unloaded = [(await timed(client, "trickle", {"mode": "echo"}))[1] for _ in range(10)]
            one_slow = (await timed(client, "flood", slow(1)))[1]
            # 10x the capacity of 1 s requests: 40 at once, most of them queue.
            flood = [asyncio.ensure_future(timed(client, "flood", slow(1))) for _ in range(10 * SLOTS)]
            await asyncio.sleep(0.5)
            trickle = []
            for _ in range(10):
                trickle.append(await timed(client, "trickle", {"mode": "echo"}))
                await asyncio.sleep(0.3)
            return unloaded, one_slow, trickle, list(await asyncio.gather(*flood))

    unloaded, one_slow, trickle, flooded = asyncio.run(scenario())
    loaded = [latency for _, latency, _ in trickle]
    print(
        f"\ntrickle p95 unloaded {p95(unloaded) * 1000:.0f} ms, "
        f"under a 10x flood {p95(loaded) * 1000:.0f} ms "
        f"(ratio {p95(loaded) / p95(unloaded):.1f}); one flood request alone {one_slow * 1000:.0f} ms; "
        f"flood statuses {sorted({status for status, _, _ in flooded})}"
    )
    assert [status for status, _, _ in trickle] == [200] * 10
    assert {status for status, _, _ in flooded} <= {200, 429}
    # The flood still had a backlog when the trickle's last request was answered: it was measured under load.
    assert (
        max(finished for _, _, finished in flooded) > max(finished for _, _, finished in trickle) + one_slow
    )
    # A slot is kept free for other namespaces, so the trickle never waits for one of the flood's requests
    # to finish (that alone would be a whole `one_slow`): a small multiple of its unloaded latency, plus a
    # margin for a slower or busier machine that is still well below one flood request.
    assert p95(loaded) <= 3 * p95(unloaded) + one_slow / 4


def test_weights_share_the_engine_when_both_namespaces_flood(engine: EngineProcess) -> None:
    async def scenario() -> dict[str, list[float]]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(base_url=engine.url, timeout=120, limits=limits) as client:
            tasks = {
                namespace: [asyncio.ensure_future(timed(client, namespace, slow(0.5))) for _ in range(24)]
                for namespace in ("heavy", "flood")
            }
            done: dict[str, list[float]] = {}
            for namespace, started in tasks.items():
                results = await asyncio.gather(*started)
                assert {status for status, _, _ in results} == {200}
                done[namespace] = sorted(finished for _, _, finished in results)
            return done

    done = asyncio.run(scenario())
    # While both still have a backlog (until `heavy`, weight 3, is through), count who finished.
    window_end = done["heavy"][-1]
    heavy = len(done["heavy"])
    light = sum(1 for finished in done["flood"] if finished <= window_end)
    ratio = heavy / max(light, 1)
    print(f"\nwhile both flooded: weight 3 finished {heavy}, weight 1 finished {light} ({ratio:.1f}:1)")
    assert 2.0 <= ratio <= 4.5
