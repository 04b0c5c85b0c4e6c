"""The MCP client on its own (no engine, no skills): transport detection, content it cannot pass on,
failures. Real MCP servers on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from skill_engine.csi.mcp import McpServers, McpSettings
from skill_engine.csi.types import InvokeRequest, ToolArgument, ToolOutput
from tests.support.mcp_servers import McpServerProcess
from tests.support.servers import free_port


@pytest.fixture(scope="module")
def odd_paths() -> Iterator[tuple[McpServerProcess, McpServerProcess]]:
    """HTTP+SSE at a path that does not say so, and Streamable HTTP at a path ending in `/sse`."""
    servers = (
        McpServerProcess("sse", "hidden", path="/events"),
        McpServerProcess("streamable", "misnamed", json_response=True, path="/sse"),
    )
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def request(name: str, **arguments: object) -> InvokeRequest:
    return InvokeRequest(name, [ToolArgument(k, str(v).encode()) for k, v in arguments.items()])


def test_the_transport_is_found_whatever_the_path_says(odd_paths: tuple[McpServerProcess, ...]) -> None:
    hidden, misnamed = odd_paths

    async def scenario() -> None:
        mcp = McpServers(McpSettings(call_timeout=10, connect_timeout=10))
        mcp.set_servers("ns", [hidden.url, misnamed.url])
        try:
            await mcp.first_listing(wait=30)
            tools = mcp.tools("ns")
            assert tools["hidden_only"][0] == hidden.url
            assert tools["misnamed_only"][0] == misnamed.url
            assert await mcp.invoke("ns", hidden.url, request("add", a=2, b=3), None) == ToolOutput(["5"])
            assert await mcp.invoke("ns", misnamed.url, request("add", a=2, b=3), None) == ToolOutput(["5"])
        finally:
            await mcp.aclose()

    asyncio.run(scenario())


def test_content_a_skill_cannot_receive_and_unreachable_servers_are_error_strings(
    odd_paths: tuple[McpServerProcess, ...],
) -> None:
    _, server = odd_paths
    nobody = f"http://127.0.0.1:{free_port()}/mcp"

    async def scenario() -> None:
        mcp = McpServers(McpSettings(call_timeout=10, connect_timeout=10))
        mcp.set_servers("ns", [server.url, nobody])
        try:
            assert await mcp.invoke("ns", server.url, request("picture"), None) == (
                "The tool answered with content of type image; skills can only receive text from tools."
            )
            assert await mcp.invoke(
                "ns", server.url, InvokeRequest("add", [ToolArgument("a", b"{")]), None
            ) == (
                "The tool call could not be executed, original error: Error deserializing argument a: "
                "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
            )
            assert await mcp.invoke("ns", nobody, request("add", a=1, b=2), None) == (
                "The tool call could not be executed, original error: All connection attempts failed"
            )
            await mcp.first_listing(wait=30)
            assert set(mcp.tools("ns")) >= {"add", "misnamed_only"}  # the dead server adds nothing
        finally:
            await mcp.aclose()

    asyncio.run(scenario())
