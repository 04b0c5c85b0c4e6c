"""Soak test: a mix of good and hostile requests at about half of the measured capacity, for a long time.

Measures capacity first (closed loop, concurrency 8, the same 90/10 mix, 20 s), then sends requests
open-loop at half that rate for `--minutes` (default 10): 90 % well-behaved (`probe` echo), 10 % hostile
(busy loop, sleep, unbounded allocation, invalid output, stdout flood, recursion, CSI from metadata) under a
short SKILL_TIMEOUT. Reports errors among the good requests, their p50/p99 latency, the hostile answers by
status, and the engine's RSS (total and anonymous) at start and end.

    .venv/bin/python -m bench.soak [--minutes 10]

Not part of `make test`; results go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.support.engine import engine_with_skills
from tests.support.skills import build_skill
from tests.support.traffic import rss_bytes

GOOD = {"mode": "echo", "payload": {"name": "Homer", "n": 42}}
HOSTILE: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "probe/run", {"mode": "busy"}),
    ("POST", "probe/run", {"mode": "sleep", "n": 5}),
    ("POST", "probe/run", {"mode": "alloc"}),
    ("POST", "hostile/run", {"mode": "invalid_json"}),
    ("POST", "hostile/run", {"mode": "stdout", "n": 16}),
    ("POST", "hostile/run", {"mode": "recurse"}),
    ("GET", "hostile/metadata", None),
]


async def capacity(url: str, seconds: float = 20.0, concurrency: int = 8) -> float:
    """Closed-loop throughput of the same 90/10 mix the soak sends: hostile requests hold a worker (and often
    the core) for up to the timeout, so echo-only capacity would overstate what the engine can take."""
    done = 0
    deadline = time.monotonic() + seconds
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                if rng.random() < 0.9:
                    response = await client.post("/v1/skills/soak/probe/run", json=GOOD)
                    response.raise_for_status()
                else:
                    method, path, body = rng.choice(HOSTILE)
                    await client.request(method, f"/v1/skills/soak/{path}", json=body)
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


async def soak(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Tickets at `rate` per second go to bounded worker pools (good: 32, hostile: 16), so the client never
    piles up thousands of pending requests; tickets no worker could take within a second count as
    `client_lag` (the client, not the engine, was the bottleneck)."""
    good_latencies: list[float] = []
    good_errors: list[str] = []
    hostile: Counter[str] = Counter()
    rng = random.Random(6)
    good_tickets: asyncio.Queue[float] = asyncio.Queue()
    bad_tickets: asyncio.Queue[float] = asyncio.Queue()
    lag = 0
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def good_worker() -> None:
            nonlocal lag
            while (ticket := await good_tickets.get()) >= 0:
                if time.monotonic() - ticket > 1.0:
                    lag += 1
                    continue
                started = time.monotonic()
                try:
                    response = await client.post("/v1/skills/soak/probe/run", json=GOOD)
                    if response.status_code != 200 or response.json() != {"result": GOOD["payload"]}:
                        good_errors.append(f"{response.status_code}: {response.text[:120]}")
                except httpx.HTTPError as e:
                    good_errors.append(repr(e))
                good_latencies.append(time.monotonic() - started)

        async def bad_worker() -> None:
            nonlocal lag
            while (ticket := await bad_tickets.get()) >= 0:
                if time.monotonic() - ticket > 1.0:
                    lag += 1
                    continue
                method, path, body = rng.choice(HOSTILE)
                try:
                    response = await client.request(method, f"/v1/skills/soak/{path}", json=body)
                    hostile[f"{path} {body and body.get('mode')}: {response.status_code}"] += 1
                except httpx.HTTPError as e:
                    hostile[f"{path}: {type(e).__name__}"] += 1

        workers = [asyncio.create_task(good_worker()) for _ in range(32)]
        workers += [asyncio.create_task(bad_worker()) for _ in range(16)]
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            while sent < int(elapsed * rate):
                (good_tickets if rng.random() < 0.9 else bad_tickets).put_nowait(time.monotonic())
                sent += 1
            await asyncio.sleep(0.01)
        for _ in range(32):
            good_tickets.put_nowait(-1)
        for _ in range(16):
            bad_tickets.put_nowait(-1)
        await asyncio.gather(*workers)
    latencies = sorted(good_latencies)
    return {
        "good": len(latencies),
        "good_errors": good_errors,
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "hostile": hostile,
        "client_lag": lag,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cache-dir", type=Path, help="compiled-skill cache to reuse (default: a fresh one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = engine_with_skills(
            Path(tmp),
            {"probe": build_skill("probe"), "hostile": build_skill("hostile")},
            {
                "SKILL_TIMEOUT": "2s",
                "SKILL_MEMORY_LIMIT": "128MiB",
                "WASMTIME_CACHE_DIR": str(args.cache_dir or Path(tmp) / "c"),
            },
            namespace="SOAK",
        ).start(timeout=600)
        try:
            with httpx.Client(base_url=engine.url, timeout=600) as warm:
                assert warm.post("/v1/skills/soak/probe/run", json=GOOD).status_code == 200
                assert warm.post("/v1/skills/soak/hostile/run", json={"mode": "ok"}).status_code == 200
            assert engine.process is not None
            pid = engine.process.pid
            measured = asyncio.run(capacity(engine.url))
            rss_start, anon_start = rss_bytes(pid), rss_bytes(pid, "RssAnon")
            rate = measured / 2
            print(f"capacity {measured:.1f} req/s (90/10 mix, concurrency 8); soaking at {rate:.1f} req/s")
            result = asyncio.run(soak(engine.url, rate, args.minutes * 60))
            time.sleep(3)
            rss_end, anon_end = rss_bytes(pid), rss_bytes(pid, "RssAnon")
        finally:
            engine.stop()
    mib = 2**20
    print(f"minutes {args.minutes:g}, good requests {result['good']}, errors {len(result['good_errors'])}")
    for error in result["good_errors"][:10]:
        print("  ", error)
    print(f"tickets dropped because the client lagged: {result['client_lag']}")
    print(f"good latency p50 {result['p50'] * 1000:.1f} ms, p99 {result['p99'] * 1000:.1f} ms")
    print(
        f"RSS start {rss_start / mib:.0f} MiB, end {rss_end / mib:.0f} MiB ({rss_end / rss_start - 1:+.1%})"
    )
    print(f"anonymous RSS start {anon_start / mib:.0f} MiB, end {anon_end / mib:.0f} MiB")
    for key, count in sorted(result["hostile"].items()):
        print(f"  hostile {key}: {count}")


if __name__ == "__main__":
    main()
