"""The engine as an MCP server (`/v1/mcp/{namespace}`), driven by the `mcp` package's own client: the
namespace's function skills and tools listed, a skill called, invalid input as a tool error, a skill
added to the namespace appearing, and 401 without a token when `AUTHORIZATION_URL` is set."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from tests.support.engine import EngineProcess, WarmUp, running
from tests.support.skills import build_skill

TOKEN = "good-user"


@pytest.fixture(scope="module")
def skills_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mcp-server-skills")
    shutil.copy(build_skill("mcp_user"), directory / "mcp_user.wasm")
    return directory


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    skills_dir: Path,
    streamer_wasm: Path,
    compiled_cache: Path,
    iam: str,
) -> Iterator[EngineProcess]:
    shutil.copy(streamer_wasm, skills_dir / "streamer.wasm")
    env = {
        "NAMESPACES__TEAM__DIRECTORY": str(skills_dir),
        "NAMESPACES__TEAM__NATIVE_TOOLS": '["add", "saboteur"]',
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "AUTHORIZATION_URL": iam,
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    warm = [WarmUp.metadata("team", skill, headers) for skill in ("mcp_user", "streamer")]
    process = EngineProcess(tmp_path_factory.mktemp("engine-mcp-server"), env)
    with running(process, warm, timeout=180, warm_timeout=1200):  # compiling: minutes on a busy machine
        yield process


async def _session(url: str, token: str | None, work: Any, statuses: list[int]) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    async with (
        httpx2.AsyncClient(headers=headers, timeout=120, event_hooks={"response": [record]}) as http,
        Client(streamable_http_client(url, http_client=http), cache=None) as client,
    ):
        return await work(client)


def session(
    engine: EngineProcess, work: Any, token: str | None = TOKEN, statuses: list[int] | None = None
) -> Any:
    """Runs `work(client)` in an MCP session with the engine; `statuses` collects the HTTP statuses."""
    recorded = [] if statuses is None else statuses
    return asyncio.run(_session(f"{engine.url}/v1/mcp/team", token, work, recorded))


async def _list(client: Client) -> dict[str, Any]:
    result = await client.list_tools()
    return {tool.name: tool for tool in result.tools}


def test_lists_function_skills_and_tools(engine: EngineProcess) -> None:
    tools = session(engine, _list)
    assert sorted(tools) == ["add", "mcp_user", "saboteur"]  # the message-stream skill is left out
    skill = tools["mcp_user"]
    assert skill.description == "Lists and calls tools for the engine's MCP tests."
    assert skill.input_schema["type"] == "object"
    assert skill.input_schema["required"] == ["mode"]
    assert skill.output_schema is not None and "result" in skill.output_schema["properties"]
    assert tools["add"].description == "Add two numbers"
    assert tools["add"].input_schema["required"] == ["a", "b"]


def test_calls_a_skill_with_the_callers_token(engine: EngineProcess) -> None:
    arguments = {"mode": "invoke", "calls": [{"name": "add", "args": {"a": 2, "b": 3}}]}

    async def work(client: Client) -> CallToolResult:
        return await client.call_tool("mcp_user", arguments)

    result = session(engine, work)
    assert not result.is_error
    expected = {"result": [{"text": "5", "contents": ["5"]}]}
    [content] = result.content
    assert isinstance(content, TextContent) and json.loads(content.text) == expected
    assert result.structured_content == expected


def test_calls_a_tool_and_a_failing_tool(engine: EngineProcess) -> None:
    async def work(client: Client) -> tuple[CallToolResult, CallToolResult]:
        return await client.call_tool("add", {"a": 40, "b": 2}), await client.call_tool("saboteur", {})

    added, sabotaged = session(engine, work)
    assert (added.is_error, [c.text for c in added.content]) == (False, ["42"])
    assert (sabotaged.is_error, [c.text for c in sabotaged.content]) == (True, ["Out of cheese."])


def test_invalid_input_and_skill_errors_are_tool_errors_with_the_engines_text(engine: EngineProcess) -> None:
    async def work(client: Client) -> tuple[CallToolResult, CallToolResult, CallToolResult]:
        return (
            await client.call_tool("mcp_user", {"calls": "not a list"}),
            await client.call_tool("mcp_user", {"mode": "explode"}),
            await client.call_tool("nope", {}),
        )

    invalid, failing, unknown = session(engine, work)
    assert invalid.is_error
    [text] = [c.text for c in invalid.content]
    # The same text `POST /v1/skills/team/mcp_user/run` answers with its 400.
    assert text.startswith("The skill had trouble interpreting the input:"), text
    assert "mode\n  Field required" in text
    assert failing.is_error
    assert "unknown mode explode" in failing.content[0].text
    assert (unknown.is_error, unknown.content[0].text) == (True, "Tool nope not found on any server.")


def test_a_skill_added_to_the_namespace_appears(engine: EngineProcess, skills_dir: Path) -> None:
    assert "late_user" not in session(engine, _list)
    shutil.copy(skills_dir / "mcp_user.wasm", skills_dir / "late_user.wasm")
    deadline = time.monotonic() + 60
    while "late_user" not in session(engine, _list):
        assert time.monotonic() < deadline, "the added skill was not listed"
        time.sleep(0.5)
    (skills_dir / "late_user.wasm").unlink()
    while "late_user" in session(engine, _list):
        assert time.monotonic() < deadline, "the removed skill is still listed"
        time.sleep(0.5)


def test_unknown_namespace_and_missing_token(engine: EngineProcess) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    response = httpx.post(f"{engine.url}/v1/mcp/team", json=body, headers=headers, timeout=30)
    assert response.status_code == 401
    statuses: list[int] = []
    with pytest.raises(Exception, match="unhandled errors"):  # the client fails to connect
        session(engine, _list, token=None, statuses=statuses)
    assert statuses and set(statuses) == {401}
    headers["Authorization"] = f"Bearer {TOKEN}"
    response = httpx.post(f"{engine.url}/v1/mcp/elsewhere", json=body, headers=headers, timeout=30)
    assert (response.status_code, response.text) == (404, "Namespace 'elsewhere' not found")
