"""Time to first event and events/s through the engine vs reading the backend's stream directly.

The backend is the tests' OpenAI-compatible server streaming a long answer; the engine runs the
`streamer` skill, which forwards `csi.chat_stream` to `/message-stream`.

    .venv/bin/python -m bench.streaming [--runs 10] [--words 400] [--streams 1,8]
    .venv/bin/python -m bench.streaming --short      # the smoke run of `make test`
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from tests.support.engine import EngineProcess
from tests.support.openai_server import OpenAIServer
from tests.support.servers import ThreadedServer
from tests.support.skills import build_skill


def measure(
    open_stream: Callable[[], AbstractContextManager[httpx.Response]], marker: bytes
) -> tuple[float, float, int]:
    """(seconds to first event, total seconds, events) for one stream."""
    started = time.perf_counter()
    first = 0.0
    events = 0
    with open_stream() as response:
        for chunk in response.iter_raw():
            count = chunk.count(marker)
            if count and not events:
                first = time.perf_counter() - started
            events += count
    return first, time.perf_counter() - started, events


def concurrent(
    open_stream: Callable[[httpx.Client], AbstractContextManager[httpx.Response]],
    marker: bytes,
    streams: int,
    runs: int,
) -> tuple[float, float]:
    """(median ms to first event, events/s summed over `streams` concurrent streams) over `runs` rounds."""
    clients = [httpx.Client(timeout=300) for _ in range(streams)]
    firsts: list[float] = []
    rates: list[float] = []
    try:
        with ThreadPoolExecutor(max_workers=streams) as pool:
            for _ in range(runs):
                started = time.perf_counter()
                samples = list(pool.map(lambda c: measure(lambda: open_stream(c), marker), clients))
                elapsed = time.perf_counter() - started
                firsts.extend(sample[0] for sample in samples)
                rates.append(sum(sample[2] for sample in samples) / elapsed)
    finally:
        for client in clients:
            client.close()
    return statistics.median(firsts) * 1000, statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--words", type=int, default=400)
    parser.add_argument("--streams", default="1,8", help="numbers of concurrent streams")
    parser.add_argument("--short", action="store_true", help="2 runs of 50 words, 1 and 2 streams")
    args = parser.parse_args()
    runs, words = (2, 50) if args.short else (args.runs, args.words)
    stream_counts = [1, 2] if args.short else [int(n) for n in args.streams.split(",")]

    backend = OpenAIServer()
    server = ThreadedServer(backend.app).start()
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
    engine = EngineProcess(workdir, env).start(timeout=180)
    text = " ".join(f"w{i}" for i in range(words))
    skill_body = {"mode": "chat_stream", "text": text, "model": "bench"}
    direct_body = {
        "model": "bench",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    skill_url = f"{engine.url}/v1/skills/bench/streamer/message-stream"
    rows: dict[tuple[str, int], tuple[float, float]] = {}
    try:
        with httpx.Client(timeout=600) as warm:  # compile + warm-up
            measure(lambda: warm.stream("POST", skill_url, json=skill_body), b"event: ")
        for streams in stream_counts:
            rows[("backend directly", streams)] = concurrent(
                lambda c: c.stream("POST", f"{server.url}/v1/chat/completions", json=direct_body),
                b"data: ",
                streams,
                runs,
            )
            rows[("through the engine", streams)] = concurrent(
                lambda c: c.stream("POST", skill_url, json=skill_body), b"event: ", streams, runs
            )
    finally:
        engine.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{runs} rounds of streams of {words} words each\n")
    print("| path | concurrent streams | median ms to first event | events/s (sum over streams) |")
    print("|---|---|---|---|")
    for (label, streams), (first_ms, rate) in rows.items():
        print(f"| {label} | {streams} | {first_ms:.1f} | {rate:.0f} |")
    print()
    for streams in stream_counts:
        direct, through = rows[("backend directly", streams)], rows[("through the engine", streams)]
        print(
            f"{streams} stream(s), engine / direct: events/s {through[1] / direct[1]:.2f}x, "
            f"first event +{through[0] - direct[0]:.1f} ms (goals: >= 10000 events/s at 8, +<= 5 ms)"
        )


if __name__ == "__main__":
    main()
