"""Real MCP servers for the tests, built with the `mcp` package's `MCPServer` (mcp 2's FastMCP).

`python -m tests.support.mcp_servers --transport streamable|sse [--json-response] --port N --label L` serves:
- `add(a, b)` "Add two numbers" (sends an info log notification before answering, like PhariaEngine's
  fixture, so Streamable HTTP answers carry a notification before the result);
- `saboteur()` "I have ran out of cheese." (raises `Out of cheese.`: an `isError` result);
- `sleep(seconds)` answers `slept <seconds>` after sleeping;
- `subtract(a, b)` "Subtract on the MCP server", answering `mcp:<a-b>` (clashes with the native tool);
- `whoami()` answers the `Authorization` header the server received (or `anonymous`);
- `<label>_only()` answers the label (tells servers apart);
- `picture()` answers a PNG image (content skills cannot receive).

With `--require-token` every HTTP request without an `Authorization` header is answered 401. `--path`
serves the transport at another path than `/mcp` (Streamable HTTP) or `/sse` (HTTP+SSE). With
`--drop-answers` every `tools/call` runs but its HTTP answer is cut off after the status line (the
connection breaks), and `GET /calls` answers how many `tools/call` requests arrived.

`McpServerProcess` runs one as a child process on a fixed loopback port so that a test can restart it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from starlette.responses import PlainTextResponse

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def build_server(label: str) -> MCPServer:
    server = MCPServer(name=f"test-{label}", log_level="WARNING")

    @server.tool(description="Add two numbers")
    async def add(a: int, b: int, ctx: Context) -> int:
        await ctx.info(f"adding {a} and {b}")
        return a + b

    @server.tool(description="I have ran out of cheese.")
    def saboteur() -> str:
        raise ToolError("Out of cheese.")

    @server.tool(description="Sleeps, then answers")
    async def sleep(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Subtract on the MCP server")
    def subtract(a: int, b: int) -> str:
        return f"mcp:{a - b}"

    @server.tool(description="Who the server thinks is calling")
    def whoami(ctx: Context) -> str:
        headers = ctx.headers or {}
        return headers.get("authorization", "anonymous")

    @server.tool(description="A tiny picture")
    def picture() -> Image:
        return Image(data=b"\x89PNG\r\n\x1a\n", format="png")

    def only() -> str:
        return label

    server.add_tool(only, name=f"{label}_only", description=f"Only on {label}")
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["streamable", "sse"], required=True)
    parser.add_argument("--json-response", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--label", default="server")
    parser.add_argument("--require-token", action="store_true")
    parser.add_argument("--path")
    parser.add_argument("--drop-answers", action="store_true")
    args = parser.parse_args()
    server = build_server(args.label)
    if args.transport == "sse":
        app: Any = server.sse_app(sse_path=args.path or "/sse")
    else:
        app = server.streamable_http_app(
            json_response=args.json_response, streamable_http_path=args.path or "/mcp"
        )
    if args.require_token:
        app = _require_token(app)
    if args.drop_answers:
        app = _drop_tool_answers(app)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def _require_token(app: Any) -> Any:
    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not any(k == b"authorization" for k, _ in scope["headers"]):
            await PlainTextResponse("token required", status_code=401)(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


def _drop_tool_answers(app: Any) -> Any:
    calls = 0

    async def dropping(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        if scope["type"] == "http" and scope["path"] == "/calls":
            await PlainTextResponse(str(calls))(scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        messages = [await receive()]
        while messages[-1].get("more_body", False):
            messages.append(await receive())
        pending = iter(messages)

        async def replay() -> Any:
            return next(pending, None) or await receive()

        if b'"tools/call"' not in b"".join(m.get("body", b"") for m in messages):
            await app(scope, replay, send)
            return
        calls += 1

        async def cut(message: Any) -> None:
            if message["type"] == "http.response.start":
                await send(message)
                return
            raise ConnectionAbortedError("the answer is dropped on purpose")

        await app(scope, replay, cut)

    return dropping


class McpServerProcess:
    """One test MCP server in a child process; `restart()` keeps its port (and URL)."""

    def __init__(
        self,
        transport: str,
        label: str,
        json_response: bool = False,
        require_token: bool = False,
        path: str | None = None,
        drop_answers: bool = False,
    ) -> None:
        self.path = path
        self.drop_answers = drop_answers
        self.transport = transport
        self.label = label
        self.json_response = json_response
        self.require_token = require_token
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        path = self.path or ("/sse" if self.transport == "sse" else "/mcp")
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 20) -> McpServerProcess:
        command = [
            sys.executable,
            "-m",
            "tests.support.mcp_servers",
            "--transport",
            self.transport,
            "--port",
            str(self.port),
            "--label",
            self.label,
        ]
        if self.json_response:
            command.append("--json-response")
        if self.require_token:
            command.append("--require-token")
        if self.path:
            command += ["--path", self.path]
        if self.drop_answers:
            command.append("--drop-answers")
        self.process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"MCP server {self.label} exited with {self.process.returncode}")
            try:
                # Any HTTP answer means the port is served (GET on /mcp without a session is a 4xx).
                httpx.head(f"http://127.0.0.1:{self.port}/", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"MCP server {self.label} did not start")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stops the server abruptly (open streams break instead of closing cleanly)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()


if __name__ == "__main__":
    main()
