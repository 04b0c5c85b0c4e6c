"""Graceful shutdown on SIGTERM/SIGINT: stop accepting, drain in-flight work, cancel what is left, exit 0.

uvicorn already stops accepting and waits for open connections; this adds the engine's side. On the first
signal the listening socket closes; in-flight invocations may finish until shortly before `SHUTDOWN_GRACE`
(default 30 s) is over, then they are stopped (busy guests trap at their next epoch check, pending host
calls are cancelled, callers get a 503 `The engine is shutting down.`, open streams an error event).
uvicorn's own drain timeout comes a moment later, so responses are written before connections close. A
second SIGINT forces the exit. The process exits 0 (uvicorn would re-raise the signal, exit code 143).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import threading
import time
from types import FrameType

import uvicorn

from skill_engine.runtime.runner import WasmRuntime

log = logging.getLogger("skill_engine")

SHUTDOWN_MESSAGE = "The engine is shutting down."


def schedule(grace: float) -> tuple[float, float]:
    """When to stop remaining invocations and when uvicorn stops waiting for connections (seconds)."""
    stop_at = max(grace - 2.0, grace * 0.5)
    drain = max(grace - 1.0, grace * 0.8)
    return stop_at, drain


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, runtime: WasmRuntime, grace: float) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # exit 0 instead of re-raising the signal afterwards
        if not self._stopping and self._loop is not None:
            self._stopping = True
            self._loop.call_soon_threadsafe(self._begin)

    def _begin(self) -> None:
        stop_at, _ = schedule(self.grace)
        readiness = getattr(getattr(self.config.app, "state", None), "readiness", None)
        if readiness is not None:
            readiness.draining = True  # GET /ready answers 503 from now on (api/readiness.py)
        log.info(
            "Shutting down: %d invocation(s) in flight, stopping them in %.1f s if still running",
            len(self.runtime.in_flight),
            stop_at,
        )
        assert self._loop is not None
        self._loop.call_later(stop_at, self._stop_invocations)

    def _stop_invocations(self) -> None:
        if self.runtime.in_flight:
            log.warning("Shutdown grace period over: stopping %d invocation(s)", len(self.runtime.in_flight))
        self.runtime.stop_all(SHUTDOWN_MESSAGE)


def server_config(app: object, host: str, port: int, grace: float) -> uvicorn.Config:
    """uvicorn's settings for one serving process (the only one, or each of several workers)."""
    _, drain = schedule(grace)
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        log_level=logging.getLogger().level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=drain,  # type: ignore[arg-type]  # used with wait_for: a float works
        # Longer than the idle timeout of common load balancers (60 s): with uvicorn's 5 s a client that
        # reuses a connection just as the server closes it gets a reset (seen under load in bench.overhead).
        timeout_keep_alive=75,
    )


def run(app: object, host: str, port: int, runtime: WasmRuntime, grace: float) -> int:
    """Serves until a signal; logging is configured by the caller (no uvicorn log config, no access log)."""
    server = GracefulServer(server_config(app, host, port, grace), runtime, grace)
    server.run()
    return finish(server, runtime)


def finish(server: GracefulServer, runtime: WasmRuntime) -> int:
    """After serving: 1 if start-up failed (uvicorn has logged why, e.g. the port is taken), else 0."""
    if not server.started:
        return 1
    runtime.shutdown_workers()
    _exit_if_threads_stuck()
    return 0


def _exit_if_threads_stuck(wait: float = 0.3) -> None:
    """A guest blocked inside WASI (a long `sleep`) cannot be interrupted; do not let it hold the exit."""
    deadline = time.monotonic() + wait
    while True:
        busy = [t for t in threading.enumerate() if t.name.startswith("skill_") and t.is_alive()]
        if not busy:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    log.warning("%d skill thread(s) still blocked at exit; leaving them behind", len(busy))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
