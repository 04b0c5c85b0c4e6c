"""MCP answers as a skill sees them, and a skill's tool arguments as MCP wants them."""

from __future__ import annotations

import json
from typing import Any

from mcp_types import CallToolResult, TextContent

from skill_engine.csi.mcp.failures import McpFailure
from skill_engine.csi.types import InvokeRequest, ToolOutput, ToolResult


def tool_result(result: CallToolResult) -> ToolResult:
    """A tool's answer as the skill sees it: text contents, or the error text (`isError`)."""
    texts = [c.text for c in result.content if isinstance(c, TextContent)]
    if result.is_error:
        return "\n\n".join(texts) if texts else "The tool reported an error without a message."
    others = sorted({c.type for c in result.content if not isinstance(c, TextContent)})
    if others:
        return (
            f"The tool answered with content of type {', '.join(others)}; "
            "skills can only receive text from tools."
        )
    return ToolOutput(texts)


def arguments_of(request: InvokeRequest) -> dict[str, Any]:
    """Argument values arrive as JSON bytes; MCP wants them as one JSON object."""
    arguments: dict[str, Any] = {}
    for argument in request.arguments:
        try:
            arguments[argument.name] = json.loads(argument.value)
        except (ValueError, UnicodeDecodeError) as e:
            raise McpFailure(f"Error deserializing argument {argument.name}: {e}") from None
    return arguments


def could_not_execute(error: object) -> str:
    return f"The tool call could not be executed, original error: {error}"
