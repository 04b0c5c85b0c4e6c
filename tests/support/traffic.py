"""Well-behaved background traffic and process memory readings for the hostile and fault suites."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx


def rss_bytes(pid: int, kind: str = "VmRSS") -> int:
    """Resident memory of a process: `VmRSS` (all), `RssAnon` (heap, stacks, wasm memories) or `RssFile`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {kind}")


class GoodTraffic:
    """Sends one well-behaved request after another from a thread and records every failure."""

    def __init__(
        self, base_url: str, path: str, body: dict[str, Any], expected: Any, pause: float = 0.05
    ) -> None:
        self.base_url = base_url
        self.path = path
        self.body = body
        self.expected = expected
        self.pause = pause
        self.sent = 0
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> GoodTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.post(self.path, json=self.body)
                    if response.status_code != 200 or response.json() != self.expected:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as e:
                    self.failures.append(repr(e))
                self.sent += 1
                self.latencies.append(time.monotonic() - started)
                self._stop.wait(self.pause)
