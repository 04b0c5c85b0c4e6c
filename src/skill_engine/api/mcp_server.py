"""Every function skill of a namespace (and its tools) as MCP tools at `/v1/mcp/{namespace}` (docs/mcp.md).

Built on the `mcp` package's low-level `Server` and its Streamable HTTP session manager, in stateless mode:
each HTTP request stands alone, so it works behind several workers or replicas without sticky sessions,
and `tools/list` always reflects the namespace as it is now (no `list_changed` notifications: stateless
Streamable HTTP has no stream to send them on). A `tools/call` runs the skill like `POST .../run` with the
caller's bearer token: same auth (the `/v1/` prefix), limits, admission and tracing. Skill errors and
invalid input are tool results with `isError` and the engine's text. Message-stream skills are left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from skill_engine.api.http import HttpError, bearer_token, text
from skill_engine.csi import Csi, CsiContext
from skill_engine.csi.types import InvokeRequest, ToolArgument, ToolOutput
from skill_engine.errors import ExecutionError, InvalidOutput
from skill_engine.metadata import SkillKind, SkillMetadata
from skill_engine.runtime.runner import LoadedSkill, WasmRuntime
from skill_engine.skills.builtin import BuiltinSkill
from skill_engine.skills.store import SkillStore
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine.api.mcp")

WRAPPED = "input"
"""A skill whose input is not a JSON object takes it as this one argument (MCP arguments are objects)."""


def _is_object_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "object"


def input_schema(metadata: SkillMetadata) -> tuple[dict[str, Any], bool]:
    """The MCP input schema of a skill and whether the input is wrapped in `{"input": ...}`."""
    schema = metadata.input_schema
    if _is_object_schema(schema):
        return schema, False
    inner = schema if isinstance(schema, dict) else {}
    return {"type": "object", "properties": {WRAPPED: inner}, "required": [WRAPPED]}, True


class McpEndpoint:
    """The MCP server of all namespaces; the namespace comes from the request path."""

    def __init__(self, store: SkillStore, runtime: WasmRuntime, csi: Csi, telemetry: Telemetry) -> None:
        self.store = store
        self.runtime = runtime
        self.csi = csi
        self.telemetry = telemetry
        self._metadata: dict[str, tuple[LoadedSkill, SkillMetadata]] = {}
        self.server: Server[Any] = Server(
            "skill-engine",
            version="1",
            instructions="The skills and tools of one Skill Engine namespace.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self.manager = StreamableHTTPSessionManager(self.server, json_response=True, stateless=True)

    def routes(self) -> list[Route]:
        return [Route("/v1/mcp/{namespace}", _Asgi(self._asgi), methods=["GET", "POST", "DELETE"])]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Checks the namespace and the token's shape, then lets the transport answer the request."""
        request = Request(scope, receive)
        namespace: str = request.path_params["namespace"]
        try:
            bearer_token(request)
        except HttpError as e:
            await text(e.text, e.status)(scope, receive, send)
            return
        if not self._serves(namespace):
            await text(f"Namespace '{namespace}' not found", 404)(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    def _serves(self, namespace: str) -> bool:
        prefix = f"{namespace}/"
        return self.csi.tools.knows(namespace) or any(p.startswith(prefix) for p in self.store.skill_paths())

    # -- MCP handlers -------------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        namespace, token = _caller(ctx)
        tools: dict[str, types.Tool] = {}
        for name in self._skill_names(namespace):
            described = await self._describe(namespace, name, token)
            if described is not None:
                tools[name] = described
        for tool in await self.csi.tools.list_tools_for(namespace, token):
            if tool.name not in tools:  # a skill wins over a tool of the same name
                tools[tool.name] = types.Tool(
                    name=tool.name, description=tool.description, input_schema=_object(tool.input_schema)
                )
        return types.ListToolsResult(tools=list(tools.values()))

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        namespace, token = _caller(ctx)
        arguments = params.arguments or {}
        if params.name in self._skill_names(namespace):
            return await self._run_skill(namespace, params.name, arguments, token)
        request = InvokeRequest(
            params.name, [ToolArgument(k, json.dumps(v).encode()) for k, v in arguments.items()]
        )
        [result] = await self.csi.tools.invoke(namespace, [request], token)
        if isinstance(result, ToolOutput):
            return types.CallToolResult(content=[types.TextContent(text=t) for t in result.contents])
        return _tool_error(result)

    # -- skills ---------------------------------------------------------------------------------------

    def _skill_names(self, namespace: str) -> list[str]:
        prefix = f"{namespace}/"
        return [
            p.removeprefix(prefix) for p in self.store.skill_paths("programmable") if p.startswith(prefix)
        ]

    async def _metadata_of(self, namespace: str, name: str, token: str | None) -> SkillMetadata | None:
        """The skill's metadata (cached per loaded component); None for skills MCP does not offer."""
        try:
            skill = await self.store.fetch(namespace, name)
        except ExecutionError as e:
            log.warning("MCP tools/list skips %s/%s: %s", namespace, name, e.message)
            return None
        if isinstance(skill, BuiltinSkill) or skill.kind is not SkillKind.FUNCTION:
            return None
        path = f"{namespace}/{name}"
        cached = self._metadata.get(path)
        if cached is not None and cached[0] is skill:
            return cached[1]
        try:
            metadata = await self.runtime.metadata(skill, CsiContext(namespace, name, token))
        except ExecutionError as e:
            log.warning("MCP tools/list skips %s/%s: %s", namespace, name, e.message)
            return None
        self._metadata[path] = (skill, metadata)
        return metadata

    async def _describe(self, namespace: str, name: str, token: str | None) -> types.Tool | None:
        metadata = await self._metadata_of(namespace, name, token)
        if metadata is None:
            return None
        schema, _ = input_schema(metadata)
        output = metadata.output_schema if _is_object_schema(metadata.output_schema) else None
        return types.Tool(
            name=name, description=metadata.description, input_schema=schema, output_schema=output
        )

    async def _run_skill(
        self, namespace: str, name: str, arguments: dict[str, Any], token: str | None
    ) -> types.CallToolResult:
        metadata = await self._metadata_of(namespace, name, token)
        if metadata is None:
            return _tool_error(f"Skill {name} cannot be called as an MCP tool.")
        _, wrapped = input_schema(metadata)
        value = arguments.get(WRAPPED) if wrapped else arguments
        skill = await self.store.fetch(namespace, name)
        assert isinstance(skill, LoadedSkill)
        execution = self.telemetry.execution(namespace, name)
        try:
            with execution.record():
                output = await self.runtime.run(
                    skill, json.dumps(value).encode(), CsiContext(namespace, name, token)
                )
                try:
                    result = json.loads(output)
                except (ValueError, UnicodeDecodeError) as e:
                    raise InvalidOutput(str(e)) from None
        except ExecutionError as e:
            return _tool_error(e.message)
        structured = (
            result if _is_object_schema(metadata.output_schema) and isinstance(result, dict) else None
        )
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(result))], structured_content=structured
        )


class _Asgi:
    """A raw ASGI endpoint (Starlette wraps plain functions and methods as request handlers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _caller(ctx: Any) -> tuple[str, str | None]:
    request = ctx.request
    if not isinstance(request, Request):
        raise RuntimeError("MCP request without its HTTP request")
    return request.path_params["namespace"], bearer_token(request)


def _object(schema: dict[str, object]) -> dict[str, Any]:
    return dict(schema) if schema.get("type") == "object" else {"type": "object", **schema}


def _tool_error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)
