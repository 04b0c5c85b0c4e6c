"""Fair sharing: a trickle's latency while another namespace floods, with and without reserved slots.

Namespace `flood` sends `--flood` requests of `--seconds` at once (each waits on a loopback chat backend,
holding a slot without using CPU), i.e. many times the engine's `--slots`; namespace `trickle` sends quick
`echo` requests one after another meanwhile. For each `RESERVED_SKILL_SLOTS` value (the baseline `0`: a
namespace may fill every slot) the table shows the trickle's p95 unloaded and under the flood, their
ratio, and the flood's throughput; all rows come from the same run (docs/governance.md).

    .venv/bin/python -m bench.fair_sharing [--slots 4] [--flood 40] [--seconds 1] [--reserve 0,1]
    .venv/bin/python -m bench.fair_sharing --short     # flood 8 x 0.3 s, 6 trickle requests (`make test`)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.engine import EngineProcess
from tests.support.openai_server import OpenAIServer
from tests.support.servers import ThreadedServer
from tests.support.skills import build_skill

TRICKLE = 20


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


async def measure(
    url: str, flood: int, seconds: float, trickle: int = TRICKLE
) -> tuple[float, float, float, float]:
    """(unloaded p95, loaded p95, loaded max, flood requests per second)."""
    slow = {"mode": "chat", "model": f"slow-{seconds:g}", "text": "hi", "n": 4}

    async def timed(client: httpx.AsyncClient, namespace: str, body: object) -> float:
        started = time.monotonic()
        response = await client.post(f"/v1/skills/{namespace}/probe/run", json=body)
        assert response.status_code == 200, response.text
        return time.monotonic() - started

    limits = httpx.Limits(max_connections=flood + 10)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        unloaded = [await timed(client, "trickle", {"mode": "echo"}) for _ in range(trickle)]
        started = time.monotonic()
        flooding = [asyncio.ensure_future(timed(client, "flood", slow)) for _ in range(flood)]
        await asyncio.sleep(0.5)
        loaded = []
        for _ in range(trickle):
            loaded.append(await timed(client, "trickle", {"mode": "echo"}))
            await asyncio.sleep(0.2)
        await asyncio.gather(*flooding)
        throughput = flood / (time.monotonic() - started)
    return p95(unloaded), p95(loaded), max(loaded), throughput


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--flood", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--reserve", default="0,1")
    parser.add_argument("--short", action="store_true", help="smoke run: flood 8 x 0.3 s, 6 trickle requests")
    args = parser.parse_args()
    trickle = TRICKLE
    if args.short:
        args.flood, args.seconds, trickle = 8, 0.3, 6
    probe = build_skill("probe")
    backend = ThreadedServer(OpenAIServer().app).start()
    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-fair-"))
    rows = []
    try:
        for round, reserve in enumerate(int(r) for r in args.reserve.split(",")):
            env = {
                "OPENAI_INFERENCE__URL": f"{backend.url}/v1",
                "OPENAI_INFERENCE__TOKEN": "bench",
                "MAX_CONCURRENT_SKILLS": str(args.slots),
                "MAX_QUEUED_SKILLS": str(args.flood * 2),
                "SKILL_QUEUE_TIMEOUT": "5m",
                "RESERVED_SKILL_SLOTS": str(reserve),
            }
            if "WASMTIME_CACHE_DIR" in os.environ:
                env["WASMTIME_CACHE_DIR"] = os.environ["WASMTIME_CACHE_DIR"]
            for namespace in ("flood", "trickle"):
                directory = workdir / f"{namespace}-{round}"
                directory.mkdir(parents=True)
                shutil.copy(probe, directory / "probe.wasm")
                env[f"NAMESPACES__{namespace.upper()}__DIRECTORY"] = str(directory)
            engine = EngineProcess(workdir / f"engine-{round}", env).start(timeout=300)
            try:
                for namespace in ("flood", "trickle"):  # compiled, cached and warm before measuring
                    for _ in range(2 if args.short else 5):
                        httpx.post(
                            f"{engine.url}/v1/skills/{namespace}/probe/run",
                            json={"mode": "echo"},
                            timeout=600,
                        ).raise_for_status()
                measured = asyncio.run(measure(engine.url, args.flood, args.seconds, trickle))
                rows.append((reserve, *measured))
            finally:
                engine.stop()
    finally:
        backend.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{args.slots} slots, flood of {args.flood} x {args.seconds:g} s, {trickle} trickle requests")
    print("| reserved slots | trickle p95 unloaded ms | under the flood ms | ratio | max ms | flood req/s |")
    print("|---|---|---|---|---|---|")
    for reserve, unloaded, loaded, most, throughput in rows:
        print(
            f"| {reserve} | {unloaded * 1000:.0f} | {loaded * 1000:.0f} | {loaded / unloaded:.1f}x "
            f"| {most * 1000:.0f} | {throughput:.2f} |"
        )


if __name__ == "__main__":
    main()
