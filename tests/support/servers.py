"""Real HTTP servers on loopback for the engine to talk to, run by uvicorn in a background thread."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThreadedServer:
    """Serves an ASGI app on 127.0.0.1:<free port> until `stop()`; HTTPS with `tls=(certificate, key)`."""

    def __init__(self, app: Any, tls: tuple[Any, Any] | None = None) -> None:
        self.port = free_port()
        self.tls = tls
        certificate, key = (str(tls[0]), str(tls[1])) if tls else (None, None)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=certificate,
            ssl_keyfile=key,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


def sleep_for(model: str) -> float:
    """Models named `slow-<seconds>` answer after that many seconds."""
    if model.startswith("slow-"):
        return float(model.removeprefix("slow-"))
    return 0.0


async def delay(model: str) -> None:
    seconds = sleep_for(model)
    if seconds:
        await asyncio.sleep(seconds)


def app_state(app: Starlette) -> Any:
    return app.state
