"""What the engine costs per request: `/run` of an echo skill vs the same function served natively.

The baseline is what teams do today: the function behind a plain FastAPI app on uvicorn. Both servers run
as separate processes on loopback and are driven by the same client, at concurrency 1 and 16.

    .venv/bin/python -m bench.overhead [--requests 400]

With `--tracing` it compares the engine with tracing off and on instead (every request sampled and
exported over OTLP/HTTP to a loopback receiver that discards the spans).

    .venv/bin/python -m bench.overhead --tracing [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.engine import EngineProcess
from tests.support.servers import ThreadedServer, free_port
from tests.support.skills import build_skill

BODY = {"mode": "echo", "payload": {"name": "Homer", "n": 42}}

NATIVE_APP = """
from typing import Any
from fastapi import FastAPI
from pydantic import BaseModel

class Input(BaseModel):
    mode: str
    text: str = ""
    n: int = 0
    model: str = "test-model"
    payload: Any = None

class Output(BaseModel):
    result: Any = None

app = FastAPI()

@app.post("/run")
def run(input: Input) -> Output:
    return Output(result=input.payload)
"""


@dataclass
class Result:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


async def drive(url: str, concurrency: int, requests: int) -> Result:
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:
        for _ in range(20):  # warm-up
            (await client.post(url, json=BODY)).raise_for_status()
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post(url, json=BODY)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Result(
        requests_per_second=len(latencies) / elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    )


def start_native(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    (workdir / "native_app.py").write_text(NATIVE_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "native_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}/run"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(url, json=BODY, timeout=1).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("native baseline did not start")


def start_sink() -> ThreadedServer:
    """An OTLP/HTTP endpoint that accepts and drops spans (the bench measures the engine, not a collector)."""

    async def export(request: Request) -> Response:
        await request.body()
        return Response(b"", media_type="application/x-protobuf")

    return ThreadedServer(Starlette(routes=[Route("/v1/traces", export, methods=["POST"])])).start()


def compare_tracing(requests: int, skills: Path, workdir: Path, env: dict[str, str]) -> None:
    sink = start_sink()
    modes = {
        "off": {},
        "on (ratio 1, OTLP/HTTP)": {"OTEL_ENDPOINT": sink.url, "OTEL_SAMPLING_RATIO": "1"},
    }
    rows = []
    try:
        for mode, extra in modes.items():
            engine = EngineProcess(workdir / mode.split()[0], {**env, **extra}).start()
            url = f"{engine.url}/v1/skills/bench/probe/run"
            try:
                httpx.post(url, json=BODY, timeout=300).raise_for_status()
                for concurrency in (1, 16):
                    rows.append((mode, concurrency, asyncio.run(drive(url, concurrency, requests))))
            finally:
                engine.stop()
    finally:
        sink.stop()
    print(f"{requests} requests per cell, echo skill, tracing off vs on (loopback)\n")
    print("| tracing | concurrency | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for mode, concurrency, r in rows:
        print(f"| {mode} | {concurrency} | {r.requests_per_second:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--tracing", action="store_true", help="compare tracing off and on")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-"))
    skills = workdir / "skills"
    skills.mkdir()
    shutil.copy(build_skill("probe"), skills / "probe.wasm")
    env = {"NAMESPACES__BENCH__DIRECTORY": str(skills), "LOG_LEVEL": os.environ.get("LOG_LEVEL", "warning")}
    if "WASMTIME_CACHE_DIR" in os.environ:
        env["WASMTIME_CACHE_DIR"] = os.environ["WASMTIME_CACHE_DIR"]
    if args.tracing:
        try:
            compare_tracing(args.requests, skills, workdir, env)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    engine = EngineProcess(workdir, env).start()
    native, native_url = start_native(workdir)
    engine_url = f"{engine.url}/v1/skills/bench/probe/run"
    httpx.post(engine_url, json=BODY, timeout=300).raise_for_status()  # compile/load outside the timing
    try:
        rows = []
        for concurrency in (1, 16):
            native_result = asyncio.run(drive(native_url, concurrency, args.requests))
            engine_result = asyncio.run(drive(engine_url, concurrency, args.requests))
            rows.append((concurrency, engine_result, native_result))
    finally:
        engine.stop()
        native.terminate()
        native.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{args.requests} requests per cell, echo skill vs native FastAPI on uvicorn (loopback)\n")
    print(
        "| concurrency | engine req/s | native req/s | ratio | engine p50 ms | native p50 ms | added p50 ms "
        "| engine p99 ms | native p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for concurrency, e, n in rows:
        print(
            f"| {concurrency} | {e.requests_per_second:.0f} | {n.requests_per_second:.0f} | "
            f"{e.requests_per_second / n.requests_per_second:.2f}x | {e.p50_ms:.2f} | {n.p50_ms:.2f} | "
            f"{e.p50_ms - n.p50_ms:.2f} | {e.p99_ms:.2f} | {n.p99_ms:.2f} |"
        )


if __name__ == "__main__":
    main()
