"""Many inference-bound invocations at once: the engine vs a native FastAPI service, time and peak RSS.

Every call makes one chat request to an OpenAI-compatible backend that answers after `--delay` seconds
(its own process). The engine runs the SDK-built `probe` skill in `chat` mode; the baseline is what teams
run today: a FastAPI endpoint making the same call with a shared httpx client, in its own process. For each
number of simultaneous calls the table shows the time until all answered and how many answered 200 (a
round nothing else observes), then the peak RSS and PSS of a second round (engine: all its processes) and
the memory per in-flight invocation above idle.

    .venv/bin/python -m bench.concurrency [--calls 64,256,1000] [--delay 1] [--workers 1]
    .venv/bin/python -m bench.concurrency --short      # 16 calls, the check `make test` runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.overhead import start_app, tree_cpu_seconds
from tests.support.engine import EngineProcess
from tests.support.skills import build_skill

BACKEND_APP = """
import asyncio, os
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

DELAY = float(os.environ.get("BENCH_DELAY", "1"))

async def chat(request):
    body = await request.json()
    if body["model"] != "warm-up":
        await asyncio.sleep(DELAY)
    return JSONResponse({
        "id": "c", "object": "chat.completion", "created": 0, "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "echo: hello"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    })

app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
"""

NATIVE_APP = """
import os
import httpx
from fastapi import FastAPI
from pydantic import BaseModel

BACKEND = os.environ["BENCH_BACKEND"]
limits = httpx.Limits(max_connections=None, max_keepalive_connections=2000)
client = httpx.AsyncClient(timeout=60, limits=limits)

class Input(BaseModel):
    mode: str
    text: str = ""
    model: str = "bench"

app = FastAPI()

@app.post("/run")
async def run(input: Input):
    response = await client.post(BACKEND, json={
        "model": input.model, "messages": [{"role": "user", "content": input.text}], "max_tokens": 16})
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"]
"""

BODY = {"mode": "chat", "text": "hello", "model": "bench"}


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) bytes of `pid` and all its descendants.

    RSS counts a shared page once per mapping: every instance maps the component's memory image from the
    compiled artifact copy-on-write, so pages a guest only reads count once per in-flight invocation in
    RSS, but once per host in PSS, the page cache and the memory cgroup (what a memory limit enforces).
    """
    rss = pss = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return rss, pss


class Peak:
    """Samples RSS and PSS of a process tree every 50 ms on a thread while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss = self.pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            rss, pss = memory(self.pid)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)

    def __enter__(self) -> Peak:
        self.rss, self.pss = memory(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Round:
    seconds: float
    ok: int
    outcomes: Counter[str]
    idle: tuple[int, int]
    peak: tuple[int, int]
    cpu: tuple[float, float, float]
    """CPU seconds of the timed round: the service (all its processes), the load client, the backend."""


async def fire(url: str, calls: int) -> tuple[float, int, Counter[str]]:
    # Every call on its own connection, closed by the client once answered. With idle connections kept,
    # httpcore's pool scans all its connections once per idle one at every request end (O(idle x n)):
    # the client cost ~31 ms of CPU per call against the engine (which keeps idle connections 75 s)
    # but ~8 ms against uvicorn's default 5 s keep-alive, on a box where the client shares the CPU.
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def one() -> str:
            try:
                response = await client.post(url, json=BODY)
            except httpx.HTTPError as e:
                return type(e).__name__
            return str(response.status_code) if response.status_code != 200 else "200"

        started = time.perf_counter()
        outcomes = Counter(await asyncio.gather(*(one() for _ in range(calls))))
        return time.perf_counter() - started, outcomes["200"], outcomes


def _client_cpu() -> float:
    times = os.times()
    return times.user + times.system


def measure(url: str, pid: int, calls: int, backend: int) -> Round:
    """One timed round with nothing else reading the process, then one round for its peak memory:
    reading /proc/<pid>/smaps_rollup of an engine with 1,000 instances mapped every 50 ms holds its
    mmap lock against instantiation and page faults, and made the engine's round ~1.6x slower."""
    time.sleep(0.5)
    idle = memory(pid)
    before = (tree_cpu_seconds(pid), _client_cpu(), tree_cpu_seconds(backend))
    seconds, ok, outcomes = asyncio.run(fire(url, calls))
    after = (tree_cpu_seconds(pid), _client_cpu(), tree_cpu_seconds(backend))
    cpu = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
    time.sleep(0.5)
    with Peak(pid) as peak:
        asyncio.run(fire(url, calls))
    return Round(seconds, ok, outcomes, idle, (peak.rss, peak.pss), cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", default="64,256,1000")
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--env", action="append", default=[], help="extra engine setting KEY=VALUE")
    parser.add_argument("--short", action="store_true", help="16 calls, 0.2 s backend (a smoke run)")
    args = parser.parse_args()
    counts = [16] if args.short else [int(c) for c in args.calls.split(",")]
    delay = 0.2 if args.short else args.delay

    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-"))
    (workdir / "skills").mkdir()
    shutil.copy(build_skill("probe"), workdir / "skills" / "probe.wasm")
    processes: list[subprocess.Popen[bytes]] = []
    engine: EngineProcess | None = None
    results: dict[int, tuple[Round, Round]] = {}
    try:
        os.environ["BENCH_DELAY"] = str(delay)
        backend, backend_url = start_app(
            workdir, "bench_backend", BACKEND_APP, "/v1/chat/completions", b'{"model": "warm-up"}'
        )
        processes.append(backend)
        os.environ["BENCH_BACKEND"] = backend_url
        native, native_url = start_app(
            workdir, "native_chat", NATIVE_APP, "/run", b'{"mode": "chat", "model": "warm-up"}'
        )
        processes.append(native)
        env = {
            "NAMESPACES__BENCH__DIRECTORY": str(workdir / "skills"),
            "OPENAI_INFERENCE__URL": backend_url.removesuffix("/chat/completions"),
            "OPENAI_INFERENCE__TOKEN": "bench",
            "LOG_LEVEL": "warning",
            "WORKERS": str(args.workers),
            "MAX_QUEUED_SKILLS": str(max(counts) * 2),
            "SKILL_QUEUE_TIMEOUT": "120s",
        }
        if "WASMTIME_CACHE_DIR" in os.environ:
            env["WASMTIME_CACHE_DIR"] = os.environ["WASMTIME_CACHE_DIR"]
        for item in args.env:
            key, _, value = item.partition("=")
            env[key] = value
        engine = EngineProcess(workdir, env).start(timeout=120)
        assert engine.process is not None
        engine_url = f"{engine.url}/v1/skills/bench/probe/run"
        httpx.post(engine_url, json=BODY, timeout=900).raise_for_status()  # compile + warm-up
        for calls in counts:
            native_round = measure(native_url, native.pid, calls, backend.pid)
            engine_round = measure(engine_url, engine.process.pid, calls, backend.pid)
            results[calls] = (engine_round, native_round)
    finally:
        if engine is not None:
            engine.stop()
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    mib = 1024 * 1024
    print(f"backend answers after {delay:g} s; engine WORKERS={args.workers} {' '.join(args.env)}\n")
    print(
        "| calls | engine s | native s | ratio | 200s engine/native | peak RSS MiB engine/native "
        "| peak PSS MiB engine/native | engine per in-flight call MiB RSS/PSS "
        "| CPU ms per call engine/native | client+backend CPU ms per call engine/native round |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for calls, (e, n) in results.items():
        per_rss = (e.peak[0] - e.idle[0]) / calls / mib
        per_pss = (e.peak[1] - e.idle[1]) / calls / mib
        print(
            f"| {calls} | {e.seconds:.2f} | {n.seconds:.2f} | {e.seconds / n.seconds:.2f}x | {e.ok}/{n.ok} "
            f"| {e.peak[0] / mib:.0f}/{n.peak[0] / mib:.0f} | {e.peak[1] / mib:.0f}/{n.peak[1] / mib:.0f} "
            f"| {per_rss:.2f}/{per_pss:.2f} | {e.cpu[0] / calls * 1000:.1f}/{n.cpu[0] / calls * 1000:.1f} "
            f"| {(e.cpu[1] + e.cpu[2]) / calls * 1000:.1f}/{(n.cpu[1] + n.cpu[2]) / calls * 1000:.1f} |"
        )
    for calls, (e, n) in results.items():
        for label, r in (("engine", e), ("native", n)):
            if r.ok != calls:
                print(f"{label} at {calls} calls: outcomes {dict(r.outcomes)}")
    print("\nratio = engine time / native time for the same calls in the same run (goal at 1000: <= 1.5x)")
    print(
        "CPU per call: of the service's processes during the timed round, and of this load client plus the "
        "backend in that round (both sides pay those; on a shared box the wall-clock ratio moves with "
        "other load, CPU barely does)"
    )
    if any(e.ok != calls or n.ok != calls for calls, (e, n) in results.items()):
        sys.exit(1)


if __name__ == "__main__":
    main()
