"""Graceful shutdown of a real engine process: drain in-flight work, stop what outlives the grace, exit 0."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills

RUN = "/v1/skills/my-team/probe/run"


def start(tmp_path: Path, probe_wasm: Path, compiled_cache: Path, grace: str) -> EngineProcess:
    engine = engine_with_skills(
        tmp_path,
        {"probe": probe_wasm},
        {"WASMTIME_CACHE_DIR": str(compiled_cache), "SHUTDOWN_GRACE": grace, "SKILL_TIMEOUT": "60s"},
    ).start()
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        assert client.post(RUN, json={"mode": "echo"}).status_code == 200
    return engine


class Background:
    """One request sent from a thread, so the test can signal the engine meanwhile."""

    def __init__(self, url: str, body: dict[str, object]) -> None:
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._send, args=(url, body))
        self.thread.start()

    def _send(self, url: str, body: dict[str, object]) -> None:
        try:
            self.response = httpx.post(url + RUN, json=body, timeout=60)
        except Exception as e:
            self.error = e

    def result(self) -> httpx.Response:
        self.thread.join(timeout=60)
        assert self.error is None, repr(self.error)
        assert self.response is not None
        return self.response


def signal_and_wait(engine: EngineProcess, sig: int, timeout: float) -> tuple[int, float]:
    assert engine.process is not None
    started = time.monotonic()
    engine.process.send_signal(sig)
    code = engine.process.wait(timeout=timeout)
    return code, time.monotonic() - started


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_engine_exits_0_at_once(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path, sig: signal.Signals
) -> None:
    engine = start(tmp_path, probe_wasm, compiled_cache, "30s")
    code, elapsed = signal_and_wait(engine, sig, 15)
    assert code == 0, engine.logs()
    assert elapsed < 5


def test_in_flight_invocation_finishes_and_new_connections_are_refused(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path
) -> None:
    engine = start(tmp_path, probe_wasm, compiled_cache, "10s")
    sleeper = Background(engine.url, {"mode": "sleep", "n": 3})
    time.sleep(0.7)
    assert engine.process is not None
    engine.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(engine.url + "/health", timeout=2)
    response = sleeper.result()
    assert response.status_code == 200
    assert response.json() == {"result": "woke up"}
    code = engine.process.wait(timeout=15)
    assert code == 0, engine.logs()


def test_invocation_outliving_the_grace_is_stopped_and_the_engine_exits_within_it(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path
) -> None:
    engine = start(tmp_path, probe_wasm, compiled_cache, "3s")
    busy = Background(engine.url, {"mode": "busy"})
    sleeper = Background(engine.url, {"mode": "sleep", "n": 50})
    time.sleep(0.7)
    code, elapsed = signal_and_wait(engine, signal.SIGTERM, 15)
    assert code == 0, engine.logs()
    assert elapsed < 3.5
    for request in (busy, sleeper):
        response = request.result()
        assert response.status_code == 503
        assert response.text.endswith("Original error:\n\nThe engine is shutting down.")
    assert "Shutting down" in engine.logs()
