"""Time to first event and events/s through the engine vs reading the backend's stream directly.

The backend is the tests' OpenAI-compatible server streaming a long answer; the engine runs the
`streamer` skill, which forwards `csi.chat_stream` to `/message-stream`.

First event, measured the same way on both paths: every stream asks for a model name of its own, and
the backend records when that request arrived and when its first chunk (the role delta: the first
token) was handed to its server, on `perf_counter` (CLOCK_MONOTONIC, one clock for all processes of the
machine). The backend runs in a process of its own: in the client's process its thread shared the GIL
with the client threads, so a client waited up to a GIL switch interval (5 ms) to see a chunk that had
arrived while the backend was busy sending the rest of a stream. Besides the time to the first event the
bench prints where it went — until the request reached the backend, the backend's own time to its first
token, and from that token to the first event at the client — and the engine-added time: time to first
event minus the backend's own time to first token, through the engine minus directly (under load the
backend's own time varies from run to run; the plain difference of the two times also counts that).

    .venv/bin/python -m bench.streaming [--runs 10] [--words 400] [--streams 1,8]
    .venv/bin/python -m bench.streaming --short      # the smoke run of `make test`
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.support.engine import EngineProcess
from tests.support.openai_server import OpenAIServer
from tests.support.servers import free_port
from tests.support.skills import build_skill


class BackendClock:
    """ASGI wrapper of the backend: per model name, when the request arrived and when the first
    non-empty body chunk (the first token) was handed to the server; `GET /bench/first-tokens` answers
    them as JSON."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: dict[str, tuple[float, float]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/bench/first-tokens":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": json.dumps(self.seen).encode()})
            return
        arrived = time.perf_counter()  # before the body is read, as for a client's request
        body = bytearray()
        first: list[float] = []

        async def receive_body() -> Any:
            message = await receive()
            body.extend(message.get("body", b""))
            return message

        async def send_timed(message: Any) -> None:
            if not first and message["type"] == "http.response.body" and message.get("body"):
                first.append(time.perf_counter())
                model = json.loads(body).get("model")
                if isinstance(model, str):
                    self.seen[model] = (arrived, first[0])
            await send(message)

        await self.app(scope, receive_body, send_timed)


def _serve_backend(port: int) -> None:
    """The backend process: the tests' OpenAI-compatible server behind a `BackendClock`."""
    clock = BackendClock(OpenAIServer().app)
    uvicorn.run(clock, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


class BackendProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = multiprocessing.get_context("spawn").Process(
            target=_serve_backend, args=(self.port,), daemon=True
        )

    def start(self) -> BackendProcess:
        self.process.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/bench/first-tokens", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("the backend did not start")

    def first_tokens(self) -> dict[str, tuple[float, float]]:
        """Per model name: (request arrived, first token sent), perf_counter seconds."""
        seen = httpx.get(f"{self.url}/bench/first-tokens", timeout=30).json()
        return {model: (times[0], times[1]) for model, times in seen.items()}

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(timeout=10)


@dataclass(frozen=True)
class Sample:
    started: float
    first: float
    """When the first event arrived (perf_counter), 0.0 if none did."""
    total: float
    events: int
    model: str


def measure(
    open_stream: Callable[[str], AbstractContextManager[httpx.Response]], marker: bytes, model: str
) -> Sample:
    """One stream asking for `model`: when it started and when its first event arrived."""
    started = time.perf_counter()
    first = 0.0
    events = 0
    with open_stream(model) as response:
        for chunk in response.iter_raw():
            count = chunk.count(marker)
            if count and not events:
                first = time.perf_counter()
            events += count
    return Sample(started, first, time.perf_counter() - started, events, model)


@dataclass(frozen=True)
class Row:
    first_ms: float
    """Median ms from the request to the first event."""
    rate: float
    """Median events/s summed over the concurrent streams."""
    to_backend_ms: float
    """Median ms until the backend had the request."""
    backend_ms: float
    """Median ms the backend itself took from the request to its first token."""
    relay_ms: float
    """Median ms from the backend's first token to the first event at the client."""
    unexplained_ms: float
    """Median over streams of (ms to first event - the backend's own ms to first token)."""


_models = itertools.count()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process `pid`, all its threads (Linux `/proc/PID/stat`)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def concurrent(
    open_stream: Callable[[httpx.Client, str], AbstractContextManager[httpx.Response]],
    marker: bytes,
    streams: int,
    runs: int,
    backend: BackendProcess,
) -> Row:
    """Medians over `runs` rounds of `streams` concurrent streams (first event over every stream)."""
    clients = [httpx.Client(timeout=300) for _ in range(streams)]
    samples: list[Sample] = []
    rates: list[float] = []
    try:
        with ThreadPoolExecutor(max_workers=streams) as pool:
            for _ in range(runs):
                models = [f"bench-{next(_models)}" for _ in clients]
                started = time.perf_counter()
                round_ = list(
                    pool.map(
                        lambda c, m: measure(lambda model: open_stream(c, model), marker, m), clients, models
                    )
                )
                elapsed = time.perf_counter() - started
                samples.extend(round_)
                rates.append(sum(sample.events for sample in round_) / elapsed)
    finally:
        for client in clients:
            client.close()
    seen = backend.first_tokens()
    timed = [(s, seen[s.model]) for s in samples if s.model in seen and s.first]

    def median_ms(values: list[float]) -> float:
        return statistics.median(values) * 1000 if values else float("nan")

    return Row(
        median_ms([s.first - s.started for s in samples if s.first]),
        statistics.median(rates),
        median_ms([arrived - s.started for s, (arrived, _) in timed]),
        median_ms([token - arrived for _, (arrived, token) in timed]),
        median_ms([s.first - token for s, (_, token) in timed]),
        median_ms([(s.first - s.started) - (token - arrived) for s, (arrived, token) in timed]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--words", type=int, default=400)
    parser.add_argument("--streams", default="1,8", help="numbers of concurrent streams")
    parser.add_argument("--env", action="append", default=[], help="extra engine setting KEY=VALUE")
    parser.add_argument("--short", action="store_true", help="2 runs of 50 words, 1 and 2 streams")
    args = parser.parse_args()
    runs, words = (2, 50) if args.short else (args.runs, args.words)
    stream_counts = [1, 2] if args.short else [int(n) for n in args.streams.split(",")]

    server = BackendProcess().start()
    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-"))
    (workdir / "skills").mkdir()
    shutil.copy(build_skill("streamer", "message-stream-skill"), workdir / "skills" / "streamer.wasm")
    env = {
        "NAMESPACES__BENCH__DIRECTORY": str(workdir / "skills"),
        "OPENAI_INFERENCE__URL": f"{server.url}/v1",
        "OPENAI_INFERENCE__TOKEN": "bench",
        "LOG_LEVEL": "warning",
    }
    if "WASMTIME_CACHE_DIR" in os.environ:
        env["WASMTIME_CACHE_DIR"] = os.environ["WASMTIME_CACHE_DIR"]
    env.update(item.split("=", 1) for item in args.env)
    engine = EngineProcess(workdir, env).start(timeout=180)
    text = " ".join(f"w{i}" for i in range(words))

    def skill_body(model: str) -> dict[str, Any]:
        return {"mode": "chat_stream", "text": text, "model": model}

    def direct_body(model: str) -> dict[str, Any]:
        return {
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    skill_url = f"{engine.url}/v1/skills/bench/streamer/message-stream"
    direct_url = f"{server.url}/v1/chat/completions"
    rows: dict[tuple[str, int], Row] = {}
    cpu_per_event: dict[int, float] = {}
    """Engine CPU (all threads) per event, µs, by concurrent streams: the client and backend share the box."""
    try:
        with httpx.Client(timeout=600) as warm:  # compile + warm-up
            warm_up = measure(
                lambda m: warm.stream("POST", skill_url, json=skill_body(m)), b"event: ", "warm-up"
            )
        for streams in stream_counts:
            rows[("backend directly", streams)] = concurrent(
                lambda c, m: c.stream("POST", direct_url, json=direct_body(m)),
                b"data: ",
                streams,
                runs,
                server,
            )
            assert engine.process is not None
            cpu_before = cpu_seconds(engine.process.pid)
            rows[("through the engine", streams)] = concurrent(
                lambda c, m: c.stream("POST", skill_url, json=skill_body(m)),
                b"event: ",
                streams,
                runs,
                server,
            )
            events = warm_up.events * streams * runs  # every stream of these words has as many events
            cpu_per_event[streams] = (cpu_seconds(engine.process.pid) - cpu_before) / events * 1e6
    finally:
        engine.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    settings = f", engine {' '.join(args.env)}" if args.env else ""
    print(f"{runs} rounds of streams of {words} words each{settings}\n")
    print(
        "| path | concurrent streams | median ms to first event | events/s (sum over streams) "
        "| engine CPU µs per event |"
    )
    print("|---|---|---|---|---|")
    for (label, streams), row in rows.items():
        cpu = f"{cpu_per_event[streams]:.0f}" if label == "through the engine" else "-"
        print(f"| {label} | {streams} | {row.first_ms:.1f} | {row.rate:.0f} | {cpu} |")
    print()
    print("Where the first event's time went (medians over streams, ms):\n")
    print(
        "| path | concurrent streams | request to backend | backend's own first token | "
        "first token to first event | first event minus backend's own |"
    )
    print("|---|---|---|---|---|---|")
    for (label, streams), row in rows.items():
        print(
            f"| {label} | {streams} | {row.to_backend_ms:.1f} | {row.backend_ms:.1f} | "
            f"{row.relay_ms:.1f} | {row.unexplained_ms:.1f} |"
        )
    print()
    for streams in stream_counts:
        direct, through = rows[("backend directly", streams)], rows[("through the engine", streams)]
        print(
            f"{streams} stream(s), engine / direct: events/s {through.rate / direct.rate:.2f}x, "
            f"first event +{through.first_ms - direct.first_ms:.1f} ms, engine-added "
            f"+{through.unexplained_ms - direct.unexplained_ms:.1f} ms "
            "(goals: >= 10000 events/s at 8, +<= 5 ms)"
        )


if __name__ == "__main__":
    main()
