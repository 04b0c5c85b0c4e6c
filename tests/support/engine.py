"""Starts the real engine (`python -m skill_engine serve`) as a child process on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import free_port


class EngineProcess:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = workdir / "engine.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("NAMESPACES__", "OPENAI_"))},
            "KERNEL_ADDRESS": f"127.0.0.1:{self.port}",
            "METRICS_ADDRESS": f"127.0.0.1:{self.metrics_port}",
            "NAMESPACE_UPDATE_INTERVAL": "300ms",
            # One process unless a test asks for more (WORKERS defaults to the usable CPUs): the suite
            # shares a small machine, and tests/e2e/test_workers.py covers several workers.
            "WORKERS": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 120) -> EngineProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "skill_engine", "serve"],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"engine exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"engine did not become healthy:\n{self.logs()}")

    def __enter__(self) -> EngineProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_entries(self) -> list[dict[str, Any]]:
        """The JSON log lines (`LOG_FORMAT=json`) parsed; other lines (e.g. a crash's traceback) skipped."""
        entries = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass(frozen=True)
class WarmUp:
    """A request a fixture makes before its tests run, which must answer 200: a skill's first call compiles
    it (minutes on a busy machine), so tests that count or time calls never see the compilation."""

    path: str
    body: Any = None
    """POSTed as JSON; None makes it a GET."""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def run(cls, namespace: str, name: str, body: Any) -> WarmUp:
        return cls(f"/v1/skills/{namespace}/{name}/run", body)

    @classmethod
    def message_stream(cls, namespace: str, name: str, body: Any) -> WarmUp:
        return cls(f"/v1/skills/{namespace}/{name}/message-stream", body)

    @classmethod
    def metadata(cls, namespace: str, name: str, headers: Mapping[str, str] | None = None) -> WarmUp:
        """Loads (and so compiles) the skill without running it."""
        return cls(f"/v1/skills/{namespace}/{name}/metadata", headers=headers or {})


@contextmanager
def running(
    process: EngineProcess, warm: Iterable[WarmUp] = (), timeout: float = 120, warm_timeout: float = 600
) -> Iterator[EngineProcess]:
    """The engine started (healthy within `timeout`), warmed up with `warm` in order, and always stopped:
    the start/warm-up/finally block of every engine fixture."""
    process.start(timeout=timeout)
    try:
        with httpx.Client(base_url=process.url, timeout=warm_timeout) as client:
            for call in warm:
                method = "GET" if call.body is None else "POST"
                response = client.request(method, call.path, json=call.body, headers=dict(call.headers))
                assert response.status_code == 200, f"warm-up {method} {call.path}: {response.text[:500]}"
        yield process
    finally:
        process.stop()


def engine_with_skills(
    workdir: Path, skills: dict[str, Path], env: dict[str, str], namespace: str = "MY_TEAM"
) -> EngineProcess:
    """An engine serving `skills` (name → built component) from a directory namespace."""
    directory = workdir / "skills"
    directory.mkdir(parents=True, exist_ok=True)
    for name, component in skills.items():
        shutil.copy(component, directory / f"{name}.wasm")
    return EngineProcess(workdir, {f"NAMESPACES__{namespace}__DIRECTORY": str(directory), **env})


def run_engine_once(
    workdir: Path, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Runs `serve` expecting it to exit by itself (e.g. on invalid configuration)."""
    workdir.mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("NAMESPACES__", "OPENAI_"))}
    full_env["METRICS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    full_env["WORKERS"] = "1"
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "skill_engine", "serve"],
        cwd=workdir,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
