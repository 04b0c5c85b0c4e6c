"""What the engine costs per request: `/run` of an echo skill vs the same function served natively.

The baseline is what teams do today: the function behind a plain FastAPI app on uvicorn. Both servers run
as separate processes on loopback and are driven by the same client, at concurrency 1 and 16, alternately
(native, engine, native, engine, ...): the table shows medians over the rounds and each round's ratio.

    .venv/bin/python -m bench.overhead [--requests 400] [--workers 1,2] [--rounds 3]
    .venv/bin/python -m bench.overhead --short      # the smoke run of `make test`

With `--tracing` it compares the engine with tracing off and on instead (every request sampled and
exported over OTLP/HTTP to a loopback receiver that discards the spans).

    .venv/bin/python -m bench.overhead --tracing [--requests 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.engine import EngineProcess
from tests.support.servers import free_port
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


SINK_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def export(request):
    await request.body()
    return Response(b"", media_type="application/x-protobuf")

app = Starlette(routes=[Route("/v1/traces", export, methods=["POST"])])
"""


def start_app(
    workdir: Path, name: str, source: str, path: str, body: bytes
) -> tuple[subprocess.Popen[bytes], str]:
    """Serves `source`'s `app` with uvicorn in its own process; returns it and the URL of `path`."""
    (workdir / f"{name}.py").write_text(source)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"{name}:app", "--port", str(port), "--log-level", "warning"],
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}{path}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(
                url, content=body, headers={"content-type": "application/json"}, timeout=1
            ).raise_for_status()
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not start")


def start_native(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    return start_app(workdir, "native_app", NATIVE_APP, "/run", json.dumps(BODY).encode())


def start_sink(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """An OTLP/HTTP endpoint in its own process that drops spans: the bench measures the engine only."""
    process, url = start_app(workdir, "otlp_sink", SINK_APP, "/v1/traces", b"")
    return process, url.removesuffix("/v1/traces")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process: unlike latency, barely affected by other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants (the supervisor and its workers)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            total += cpu_seconds(current)
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


def span_cost(requests: int = 5000) -> dict[str, float]:
    """CPU µs per request of what tracing adds to an echo `/run` (extract, server span, response header,
    skill_execution span), measured in-process with process time so other load on the machine barely
    matters; spans go to a batch processor whose exporter drops them."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import SpanKind, set_span_in_context

    from skill_engine.telemetry.tracing import Tracing

    class Drop(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    results = {}
    for label, ratio, flags in (("not sampled (ratio 0)", 0.0, "00"), ("sampled", 1.0, "01")):
        tracing = Tracing.with_exporter(Drop(), ratio)
        assert tracing.tracer is not None
        headers = {"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-{flags}"}
        started = time.process_time()
        for _ in range(requests):
            parent = tracing.extract(headers)
            server = tracing.tracer.start_span("POST /run", context=parent, kind=SpanKind.SERVER)
            ctx = set_span_in_context(server, parent)
            tracing.response_headers(ctx)
            with tracing.tracer.start_as_current_span("skill_execution", context=ctx):
                pass
            server.end()
        tracing.shutdown()  # includes exporting what is left
        results[label] = (time.process_time() - started) / requests * 1e6
    return results


def compare_tracing(requests: int, skills: Path, workdir: Path, env: dict[str, str]) -> None:
    sink, sink_url = start_sink(workdir)
    modes = {
        "off": {},
        "on, nothing sampled (ratio 0)": {"OTEL_ENDPOINT": sink_url, "OTEL_SAMPLING_RATIO": "0"},
        "on, all sampled (ratio 1)": {"OTEL_ENDPOINT": sink_url, "OTEL_SAMPLING_RATIO": "1"},
    }
    rows: list[tuple[str, int, Result, float]] = []
    try:
        for mode, extra in modes.items():
            engine = EngineProcess(workdir / str(len(rows)), {**env, **extra}).start()
            url = f"{engine.url}/v1/skills/bench/probe/run"
            try:
                httpx.post(url, json=BODY, timeout=300).raise_for_status()
                assert engine.process is not None
                for concurrency in (1, 16):
                    before = cpu_seconds(engine.process.pid)
                    try:
                        result = asyncio.run(drive(url, concurrency, requests))
                    except httpx.HTTPError:
                        print(f"tracing {mode}, concurrency {concurrency} failed; engine log:")
                        print(engine.logs()[-3000:])
                        raise
                    cpu_ms = (cpu_seconds(engine.process.pid) - before) * 1000 / (requests + 20)
                    rows.append((mode, concurrency, result, cpu_ms))
            finally:
                engine.stop()
    finally:
        sink.terminate()
        sink.wait()
    for label, micros in span_cost().items():
        print(f"in-process span cost per request, {label}: {micros:.0f} µs CPU")
    print(f"\n{requests} requests per cell, echo skill, tracing off vs on (loopback)\n")
    print("| tracing | concurrency | req/s | p50 ms | p99 ms | engine CPU ms/request |")
    print("|---|---|---|---|---|---|")
    for mode, concurrency, r, cpu_ms in rows:
        print(
            f"| {mode} | {concurrency} | {r.requests_per_second:.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
            f"| {cpu_ms:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--tracing", action="store_true", help="compare tracing off and on")
    parser.add_argument("--workers", default="1,2", help="engine WORKERS values to measure")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of native and engine per cell")
    parser.add_argument("--env", action="append", default=[], help="extra engine setting KEY=VALUE")
    parser.add_argument("--short", action="store_true", help="30 requests, WORKERS=1 (a smoke run)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-"))
    skills = workdir / "skills"
    skills.mkdir()
    shutil.copy(build_skill("probe"), skills / "probe.wasm")
    env = {"NAMESPACES__BENCH__DIRECTORY": str(skills), "LOG_LEVEL": os.environ.get("LOG_LEVEL", "warning")}
    if "WASMTIME_CACHE_DIR" in os.environ:
        env["WASMTIME_CACHE_DIR"] = os.environ["WASMTIME_CACHE_DIR"]
    env.update(item.split("=", 1) for item in args.env)
    if args.tracing:
        try:
            compare_tracing(args.requests, skills, workdir, env)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    requests = 30 if args.short else args.requests
    rounds = 1 if args.short else args.rounds
    worker_counts = [1] if args.short else [int(w) for w in args.workers.split(",")]
    native, native_url = start_native(workdir)
    rows: list[Row] = []
    try:
        for workers in worker_counts:
            engine = EngineProcess(workdir / f"workers-{workers}", {**env, "WORKERS": str(workers)}).start(
                120
            )
            engine_url = f"{engine.url}/v1/skills/bench/probe/run"
            try:
                for _ in range(workers * 4):  # compile/load in every worker outside the timing
                    httpx.post(engine_url, json=BODY, timeout=600).raise_for_status()
                assert engine.process is not None
                cells = {concurrency: Row(workers, concurrency) for concurrency in (1, 16)}
                # Native and engine alternate, round by round: this box's speed drifts within minutes,
                # and a ratio is only honest between measurements taken side by side.
                for _ in range(rounds):
                    for concurrency, row in cells.items():
                        row.native.append(asyncio.run(drive(native_url, concurrency, requests)))
                        before = tree_cpu_seconds(engine.process.pid)
                        row.engine.append(asyncio.run(drive(engine_url, concurrency, requests)))
                        row.cpu_ms.append(
                            (tree_cpu_seconds(engine.process.pid) - before) * 1000 / (requests + 20)
                        )
                rows.extend(cells.values())
            finally:
                engine.stop()
    finally:
        native.terminate()
        native.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    settings = f", engine {' '.join(args.env)}" if args.env else ""
    print(
        f"{requests} requests per cell, {rounds} round(s) alternating native and engine, echo skill vs native"
        f" FastAPI on uvicorn (one process, loopback){settings}; medians over the rounds\n"
    )
    print(
        "| WORKERS | concurrency | engine req/s | native req/s | ratio | ratio per round | engine p50 ms "
        "| native p50 ms | added p50 ms | engine p99 ms | native p99 ms | engine CPU ms/request |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        ratios = [
            e.requests_per_second / n.requests_per_second for e, n in zip(row.engine, row.native, strict=True)
        ]
        added = [e.p50_ms - n.p50_ms for e, n in zip(row.engine, row.native, strict=True)]
        per_round = " ".join(f"{r:.2f}" for r in ratios)
        print(
            f"| {row.workers} | {row.concurrency} | {_median(row.engine, 'requests_per_second'):.0f} "
            f"| {_median(row.native, 'requests_per_second'):.0f} | {statistics.median(ratios):.2f}x "
            f"| {per_round} | {_median(row.engine, 'p50_ms'):.2f} | {_median(row.native, 'p50_ms'):.2f} "
            f"| {statistics.median(added):.2f} | {_median(row.engine, 'p99_ms'):.2f} "
            f"| {_median(row.native, 'p99_ms'):.2f} | {statistics.median(row.cpu_ms):.2f} |"
        )
    print(
        "\nratio = engine req/s / native req/s of the same round, median over the rounds"
        " (goals: >= 0.5x at 1, >= 0.7x at 16); added p50 likewise"
    )


@dataclass
class Row:
    """One table row: a WORKERS value and a concurrency, with one result per round."""

    workers: int
    concurrency: int
    engine: list[Result] = field(default_factory=list)
    native: list[Result] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def _median(results: list[Result], name: str) -> float:
    return statistics.median(float(getattr(r, name)) for r in results)


if __name__ == "__main__":
    main()
