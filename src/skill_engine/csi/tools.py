"""Tools a skill can list and invoke: PhariaEngine's native test tools and the namespace's MCP servers.

Tool errors are results, not failures: they go back to the skill as strings (engine-spec §8). A native
tool wins over an MCP tool of the same name. Native tools beyond PhariaEngine's (`execute_python`) are
provided by higher layers through `provide_native` (the sandbox runs wasm; this module does not).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

from skill_engine import telemetry
from skill_engine.csi import genai
from skill_engine.csi.errors import CsiError
from skill_engine.csi.governed import Guard
from skill_engine.csi.mcp import McpServers
from skill_engine.csi.tool_names import KNOWN_NATIVE_TOOLS, NATIVE_TOOL_NAMES, TEST_BETA
from skill_engine.csi.types import InvokeRequest, Tool, ToolOutput, ToolResult
from skill_engine.governance import audit
from skill_engine.governance.policy import Kind


def _int_argument(request: InvokeRequest, name: str) -> int:
    for argument in request.arguments:
        if argument.name == name:
            try:
                value = json.loads(argument.value)
            except (ValueError, UnicodeDecodeError) as e:
                raise ToolFailure(f"Error deserializing argument {name}: {e}") from None
            if isinstance(value, bool) or not isinstance(value, int):
                raise ToolFailure(f"Error deserializing argument {name}: expected an integer, got {value!r}")
            return value
    raise ToolFailure(f"Argument {name} not specified")


class ToolFailure(Exception):
    """A tool reported an error: the skill receives the message."""


def _wrap_i32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


@dataclass(frozen=True)
class NativeTool:
    tool: Tool
    run: Callable[[InvokeRequest], str]


@dataclass(frozen=True)
class ToolCaller:
    """Who invokes a tool: the namespace whose tools it may use and the caller's bearer token."""

    namespace: str
    token: str | None


@dataclass(frozen=True)
class ProvidedTool:
    """A native tool implemented outside this module; `run` returns its text or raises `ToolFailure`."""

    tool: Tool
    run: Callable[[InvokeRequest, ToolCaller], Awaitable[str]]


def _schema(title: str, numbers: bool) -> dict[str, object]:
    if not numbers:
        return {"properties": {}, "title": title, "type": "object"}
    return {
        "properties": {"a": {"title": "A", "type": "integer"}, "b": {"title": "B", "type": "integer"}},
        "required": ["a", "b"],
        "title": title,
        "type": "object",
    }


def _saboteur(_request: InvokeRequest) -> str:
    raise ToolFailure("Out of cheese.")


NATIVE_TOOLS: dict[str, NativeTool] = {
    "add": NativeTool(
        Tool("add", "Add two numbers", _schema("addArguments", True)),
        lambda r: str(_wrap_i32(_int_argument(r, "a") + _int_argument(r, "b"))),
    ),
    # QUIRK kept for wire compatibility: PhariaEngine titles this schema `addArguments` too.
    "subtract": NativeTool(
        Tool("subtract", "Subtract two numbers", _schema("addArguments", True)),
        lambda r: str(_wrap_i32(_int_argument(r, "a") - _int_argument(r, "b"))),
    ),
    "saboteur": NativeTool(
        Tool("saboteur", "A tool that always raises an error.", _schema("saboteurArguments", False)),
        _saboteur,
    ),
}


class Tools:
    """Per-namespace toolbox. Unknown namespaces are an error only where the caller names one (HTTP)."""

    def __init__(self, mcp: McpServers | None = None, guard: Guard | None = None) -> None:
        self._native: dict[str, list[str]] = {TEST_BETA: list(NATIVE_TOOL_NAMES)}
        self._provided: dict[str, ProvidedTool] = {}
        self.mcp = mcp if mcp is not None else McpServers()
        self.guard = guard if guard is not None else Guard()
        """Namespace policies (docs/governance.md): listings show allowed tools only, calls are checked."""

    def provide_native(self, provided: ProvidedTool) -> None:
        """Makes a native tool (e.g. `execute_python`) available to namespaces that enable it."""
        self._provided[provided.tool.name] = provided

    def set_native_tools(self, namespace: str, names: Sequence[str]) -> None:
        if namespace != TEST_BETA:
            self._native[namespace] = [n for n in names if n in KNOWN_NATIVE_TOOLS]

    def native_tools(self, namespace: str) -> list[str]:
        """The namespace's enabled native tools that this engine provides."""
        return [n for n in self._native.get(namespace, []) if n in NATIVE_TOOLS or n in self._provided]

    def set_mcp_servers(self, namespace: str, urls: Sequence[str], forward_token: Iterable[str] = ()) -> None:
        """The namespace's MCP servers (in priority order) and those that get the caller's bearer token."""
        self.mcp.set_servers(namespace, urls, forward_token)

    def enabled_anywhere(self, name: str) -> bool:
        return any(name in self.native_tools(namespace) for namespace in self._native)

    def knows(self, namespace: str) -> bool:
        return namespace in self._native or self.mcp.knows(namespace)

    def list_tools(self, namespace: str) -> list[Tool]:
        """The tools every caller sees (MCP tools as listed without credentials)."""
        return self._merge(namespace, self.mcp.tools(namespace))

    async def list_tools_for(self, namespace: str, token: str | None, over_http: bool = False) -> list[Tool]:
        """The tools as a caller with `token` sees them (servers marked for token forwarding included)."""
        with telemetry.span("list_tools", {"namespace": namespace}):
            return self._merge(namespace, await self.mcp.caller_tools(namespace, token), over_http)

    def _merge(
        self, namespace: str, mcp_tools: dict[str, tuple[str, Tool]], over_http: bool = False
    ) -> list[Tool]:
        allows = self.guard.allows
        tools = {
            name: tool
            for name, (url, tool) in mcp_tools.items()
            if allows(namespace, Kind.MCP_SERVER, url, over_http)
        }
        tools.update((n, self._native_tool(n)) for n in self.native_tools(namespace))
        return sorted(
            (t for t in tools.values() if allows(namespace, Kind.TOOL, t.name, over_http)),
            key=lambda t: t.name,
        )

    def _native_tool(self, name: str) -> Tool:
        return NATIVE_TOOLS[name].tool if name in NATIVE_TOOLS else self._provided[name].tool

    async def list_for_http(self, namespace: str, token: str | None = None) -> list[Tool]:
        """CSI over HTTP names the namespace: an unknown one is an error."""
        if not self.knows(namespace):
            raise CsiError(
                f'You tried to list the tools for a namespace that does not exist: Namespace("{namespace}")'
            )
        return await self.list_tools_for(namespace, token, over_http=True)

    def _check(
        self,
        namespace: str,
        requests: Sequence[InvokeRequest],
        mcp_tools: dict[str, tuple[str, Tool]],
        over_http: bool,
    ) -> None:
        """Every call is checked before any runs: a denied one ends the invocation (PolicyDenied, 403)."""
        for request in requests:
            self.guard.check_tool(namespace, Kind.TOOL, request.name, over_http)
            if request.name not in self._native.get(namespace, []) and request.name in mcp_tools:
                url = mcp_tools[request.name][0]
                self.guard.check_tool(namespace, Kind.MCP_SERVER, url, over_http)
                audit.touch(Kind.MCP_SERVER.value, url)
            audit.touch(Kind.TOOL.value, request.name)

    async def invoke(
        self,
        namespace: str,
        requests: Sequence[InvokeRequest],
        token: str | None = None,
        over_http: bool = False,
    ) -> list[ToolResult]:
        """Runs the requests concurrently; results in request order, failures as error strings."""
        mcp_tools = await self.mcp.caller_tools(namespace, token)
        self._check(namespace, requests, mcp_tools, over_http)

        native = self.native_tools(namespace)

        async def one(request: InvokeRequest) -> ToolResult:
            if request.name in native:
                try:
                    if request.name in NATIVE_TOOLS:
                        return ToolOutput([NATIVE_TOOLS[request.name].run(request)])
                    provided = self._provided[request.name]
                    return ToolOutput([await provided.run(request, ToolCaller(namespace, token))])
                except ToolFailure as e:
                    return str(e)
            found = mcp_tools.get(request.name)
            if found is None:
                return f"Tool {request.name} not found on any server."
            return await self.mcp.invoke(namespace, found[0], request, token)

        return await genai.tools(requests, one)

    async def aclose(self) -> None:
        await self.mcp.aclose()
