"""Skills that misbehave on purpose, each contained with its documented error, while well-behaved requests
keep succeeding and the engine's memory returns to its baseline.

One engine for the module (SKILL_TIMEOUT 3 s, 128 MiB per skill, 1 MiB output cap). Background traffic
runs for the whole module; the last test checks it saw no failure and that RSS is back near its baseline.
Single limits in isolation are covered by tests/e2e/test_limits.py; here they run together, under load.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running
from tests.support.openai_server import OpenAIServer
from tests.support.skills import build_skill
from tests.support.traffic import GoodTraffic, rss_bytes

RUNTIME_PREFIX = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)
TIMEOUT_TEXT = RUNTIME_PREFIX + "Maximum skill execution time reached."
INVALID_OUTPUT_PREFIX = (
    "The skill returned an output the Kernel could not interpret. This hints to a bug in the skill. "
    "Please contact its developer. Caused by: \n\n"
)
METADATA_CSI_TEXT = (
    "The metadata function of the invoked skill is bugged. It is forbidden to invoke any CSI functions from "
    "the metadata function, yet the skill does precisely this."
)
OUTPUT_LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def hostile_wasm() -> Path:
    return build_skill("hostile")


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    streamer_wasm: Path,
    hostile_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    process = engine_with_skills(
        tmp_path_factory.mktemp("hostile"),
        {"probe": probe_wasm, "streamer": streamer_wasm, "hostile": hostile_wasm},
        {
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "OPENAI_INFERENCE__URL": openai[1],
            "OPENAI_INFERENCE__TOKEN": "backend-token",
            "SKILL_TIMEOUT": "3s",
            "SKILL_MEMORY_LIMIT": "128MiB",
            "SKILL_OUTPUT_LIMIT": str(OUTPUT_LIMIT),
        },
        namespace="ZOO",
    )
    warm = [
        WarmUp.run("zoo", "probe", {"mode": "echo"}),
        WarmUp.run("zoo", "hostile", {"mode": "ok"}),
        WarmUp.message_stream("zoo", "streamer", {"mode": "messages"}),
    ]
    with running(process, warm, warm_timeout=300):
        yield process


@pytest.fixture(scope="module")
def baseline(engine: EngineProcess) -> int:
    assert engine.process is not None
    time.sleep(0.5)
    return rss_bytes(engine.process.pid, "RssAnon")


@pytest.fixture(scope="module")
def traffic(engine: EngineProcess, baseline: int) -> Iterator[GoodTraffic]:
    with GoodTraffic(
        engine.url, "/v1/skills/zoo/probe/run", {"mode": "echo", "payload": "good"}, {"result": "good"}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(engine: EngineProcess, traffic: GoodTraffic) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=60) as client:
        yield client


def run(client: httpx.Client, body: Any, skill: str = "hostile") -> httpx.Response:
    return client.post(f"/v1/skills/zoo/{skill}/run", json=body)


def test_storm_of_hostile_requests_at_once(engine: EngineProcess, traffic: GoodTraffic) -> None:
    """Busy loop, long sleep, unbounded allocation and recursion, all at the same time."""
    cases: list[tuple[str, dict[str, Any]]] = [
        ("probe", {"mode": "busy"}),
        ("probe", {"mode": "busy"}),
        ("probe", {"mode": "sleep", "n": 8}),
        ("probe", {"mode": "alloc"}),
        ("hostile", {"mode": "recurse"}),
        ("hostile", {"mode": "recurse_python"}),
    ]

    async def storm() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=engine.url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post(f"/v1/skills/zoo/{skill}/run", json=body) for skill, body in cases)
            )

    started = time.monotonic()
    busy1, busy2, sleep, alloc, recurse, recurse_python = asyncio.run(storm())
    assert time.monotonic() - started < 20
    for response in (busy1, busy2, sleep):
        assert (response.status_code, response.text) == (503, TIMEOUT_TEXT)
    assert alloc.status_code == 400 and "MemoryError" in alloc.text
    assert recurse.status_code == 503 and recurse.text.startswith(RUNTIME_PREFIX), recurse.text[:500]
    assert recurse_python.status_code == 400 and "RecursionError" in recurse_python.text


def test_output_above_the_cap_is_refused(client: httpx.Client) -> None:
    huge = run(client, {"mode": "huge_output", "n": 2 * OUTPUT_LIMIT})
    assert huge.status_code == 503
    assert huge.text == RUNTIME_PREFIX + (
        f"The skill output of {2 * OUTPUT_LIMIT + 2} bytes exceeds the limit of {OUTPUT_LIMIT} bytes."
    )


def test_flooding_stdout_is_capped_in_the_logs(client: httpx.Client, engine: EngineProcess) -> None:
    before = len(engine.logs())
    response = run(client, {"mode": "stdout", "n": 16})  # 16 MiB of output, 256x the log cap
    assert response.status_code == 200, response.text[-200:]
    assert response.json() == {"result": "printed"}
    written = engine.logs()[before:]
    assert "skill output truncated after 65536 bytes" in written
    assert len(written) < 1024 * 1024


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("invalid_json", "Expecting property name enclosed in double quotes at line 1 column 2"),
        ("not_utf8", "can't decode byte 0xff"),
    ],
)
def test_output_that_is_not_json(client: httpx.Client, mode: str, detail: str) -> None:
    response = run(client, {"mode": mode})
    assert response.status_code == 500
    assert response.text.startswith(INVALID_OUTPUT_PREFIX)
    assert detail in response.text


def test_clocks_are_real_and_nothing_else_is_reachable(client: httpx.Client) -> None:
    clock = run(client, {"mode": "clock"}).json()["result"]
    assert abs(clock["time"] - time.time()) < 60
    assert clock["monotonic"] >= 0
    report = run(client, {"mode": "escape"}).json()["result"]
    assert set(report) == {
        "read_passwd",
        "list_root",
        "list_cwd",
        "write_tmp",
        "environ",
        "dns",
        "tcp",
        "udp",
        "argv",
    }
    escaped = {name: outcome for name, outcome in report.items() if outcome.startswith("ok")}
    assert escaped == {}, report


def test_csi_in_metadata_is_refused(client: httpx.Client) -> None:
    response = client.get("/v1/skills/zoo/hostile/metadata")
    assert (response.status_code, response.text) == (500, METADATA_CSI_TEXT)


def test_csi_with_absurd_arguments(client: httpx.Client, openai: tuple[OpenAIServer, str]) -> None:
    unknown = run(client, {"mode": "chat", "model": "unknown-model"})
    assert unknown.status_code == 503
    assert unknown.text == RUNTIME_PREFIX + (
        "The Skill tried to access a model that was not found. Please check the provided model name. "
        "You can query the list of available models at the `models` endpoint of the inference API. "
        "If you believe the model should be available, contact the operator of your PhariaAI instance."
    )
    absurd_tokens = run(client, {"mode": "chat", "n": 2**31})  # fits `max-tokens: u32`: the backend decides
    assert absurd_tokens.status_code == 200, absurd_tokens.text[:300]
    assert isinstance(absurd_tokens.json()["result"], str)
    started = time.monotonic()
    batch = run(client, {"mode": "batch", "n": 500})
    assert batch.status_code in (200, 503), batch.text[:300]
    if batch.status_code == 200:
        assert batch.json() == {"result": 500}
    else:
        assert batch.text.startswith(RUNTIME_PREFIX)
    assert time.monotonic() - started < 10


def test_crash_mid_stream_ends_with_an_error_event(client: httpx.Client) -> None:
    response = client.post("/v1/skills/zoo/streamer/message-stream", json={"mode": "raise"})
    assert response.status_code == 200
    events = [block for block in response.text.split("\n\n") if block]
    assert events[-1].startswith("event: error")
    assert "failure mid-stream" in json.loads(events[-1].split("data: ", 1)[1])["message"]


def test_good_traffic_never_failed_and_memory_returned_to_baseline(
    engine: EngineProcess, traffic: GoodTraffic, baseline: int
) -> None:
    time.sleep(1)
    traffic.stop()
    assert traffic.failures == []
    assert traffic.sent >= 20
    assert engine.process is not None
    # Anonymous memory: heap, thread stacks and wasm linear memories. File-backed pages (the compiled
    # skills' code mapped from the cache) grow as more code paths run; they are page cache, not held memory.
    after = rss_bytes(engine.process.pid, "RssAnon")
    print(f"anonymous RSS baseline {baseline / 2**20:.0f} MiB, after {after / 2**20:.0f} MiB")
    assert after < baseline + 48 * 2**20, f"RssAnon {baseline} -> {after}"
