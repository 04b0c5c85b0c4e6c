"""Time to first event and events/s through the engine vs reading the backend's stream directly.

The backend is the tests' OpenAI-compatible server streaming a long answer; the engine runs the
`streamer` skill, which forwards `csi.chat_stream` to `/message-stream`.

    .venv/bin/python -m bench.streaming [--runs 20] [--words 400]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--words", type=int, default=400)
    args = parser.parse_args()

    backend = OpenAIServer()
    server = ThreadedServer(backend.app).start()
    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-"))
    (workdir / "skills").mkdir()
    shutil.copy(build_skill("streamer", "message-stream-skill"), workdir / "skills" / "streamer.wasm")
    engine = EngineProcess(
        workdir,
        {
            "NAMESPACES__BENCH__DIRECTORY": str(workdir / "skills"),
            "OPENAI_INFERENCE__URL": f"{server.url}/v1",
            "OPENAI_INFERENCE__TOKEN": "bench",
            "LOG_LEVEL": "warning",
        },
    ).start()
    text = " ".join(f"w{i}" for i in range(args.words))
    skill_body = {"mode": "chat_stream", "text": text, "model": "bench"}
    direct_body = {
        "model": "bench",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    client = httpx.Client(timeout=300)
    try:
        measure(
            lambda: client.stream(
                "POST", f"{engine.url}/v1/skills/bench/streamer/message-stream", json=skill_body
            ),
            b"event: ",
        )  # compile + warm-up
        rows = {}
        for label, opener, marker in (
            (
                "backend directly",
                lambda: client.stream("POST", f"{server.url}/v1/chat/completions", json=direct_body),
                b"data: ",
            ),
            (
                "through the engine",
                lambda: client.stream(
                    "POST", f"{engine.url}/v1/skills/bench/streamer/message-stream", json=skill_body
                ),
                b"event: ",
            ),
        ):
            samples = [measure(opener, marker) for _ in range(args.runs)]
            rows[label] = (
                statistics.median(s[0] for s in samples) * 1000,
                statistics.median(s[2] / s[1] for s in samples),
                samples[0][2],
            )
    finally:
        client.close()
        engine.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"{args.runs} streams of {args.words} words each, median per stream\n")
    print("| path | time to first event ms | events/s | events per stream |")
    print("|---|---|---|---|")
    for label, (first_ms, rate, events) in rows.items():
        print(f"| {label} | {first_ms:.1f} | {rate:.0f} | {events} |")
    direct, engine_row = rows["backend directly"], rows["through the engine"]
    print(
        f"\nratio (engine / direct): events/s {engine_row[1] / direct[1]:.2f}x, "
        f"first event +{engine_row[0] - direct[0]:.1f} ms"
    )


if __name__ == "__main__":
    main()
