"""Side effects happen once (issue 13 item 7): a `tools/call` whose request reached the MCP server is never
sent again, even when the connection breaks before the answer; a call that never left (the server
forgot the session) still reconnects and succeeds (tests/e2e/test_mcp.py restarts servers for that)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, running
from tests.support.mcp_servers import McpServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[McpServerProcess]:
    process = McpServerProcess("streamable", "dropper", json_response=True, drop_answers=True).start(
        timeout=120
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def stateful() -> Iterator[McpServerProcess]:
    process = McpServerProcess("streamable", "stateful", json_response=True).start(timeout=120)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, server: McpServerProcess, stateful: McpServerProcess
) -> Iterator[EngineProcess]:
    workdir: Path = tmp_path_factory.mktemp("mcp-once")
    (workdir / "skills").mkdir()
    env = {
        "NAMESPACES__TOOLS__DIRECTORY": str(workdir / "skills"),
        "NAMESPACES__TOOLS__MCP_SERVERS": f'["{server.url}"]',
        "NAMESPACES__AGAIN__DIRECTORY": str(workdir / "skills"),
        "NAMESPACES__AGAIN__MCP_SERVERS": f'["{stateful.url}"]',
        "MCP_CALL_TIMEOUT": "20s",
    }
    with running(EngineProcess(workdir, env), timeout=180) as process:
        yield process


def calls(server: McpServerProcess) -> int:
    return int(httpx.get(f"http://127.0.0.1:{server.port}/calls", timeout=10).text)


def test_a_call_that_reached_the_server_is_not_sent_again(
    engine: EngineProcess, server: McpServerProcess
) -> None:
    body = {
        "namespace": "tools",
        "requests": [{"name": "add", "arguments": [{"name": "a", "value": 1}, {"name": "b", "value": 2}]}],
    }
    with httpx.Client(base_url=engine.url, timeout=60) as client:
        listed = client.post("/csi/v1/list_tools", json={"namespace": "tools"})
        assert "add" in [t["name"] for t in listed.json()], listed.text  # the session is open
        assert calls(server) == 0
        response = client.post("/csi/v1/invoke_tool", json=body)
    assert response.status_code == 200, response.text
    [result] = response.json()
    assert isinstance(result, str) and result.startswith("The tool call could not be executed"), result
    assert calls(server) == 1
    assert "after the call was sent: not resent" in engine.logs()


def test_calls_after_a_server_restart_succeed(engine: EngineProcess, stateful: McpServerProcess) -> None:
    """Not resending calls that reached the server must not cost the reconnect: after a restart the old
    session or connection is gone without the call having run, and the call succeeds on a new one."""
    body = {
        "namespace": "again",
        "requests": [{"name": "add", "arguments": [{"name": "a", "value": 2}, {"name": "b", "value": 3}]}],
    }
    with httpx.Client(base_url=engine.url, timeout=60) as client:
        first = client.post("/csi/v1/invoke_tool", json=body)
        assert first.json() == [[{"type": "text", "text": "5"}]], first.text
        stateful.restart()
        again = client.post("/csi/v1/invoke_tool", json=body)
    assert again.json() == [[{"type": "text", "text": "5"}]], again.text
