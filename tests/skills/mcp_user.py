"""A function skill that lists and invokes the tools of its namespace (MCP and native), for the MCP tests.

Modes: `list` (name, description, schema of every tool), `invoke` (the `calls` concurrently, results in
order: `{"text": ...}` or `{"error": ...}`), `invoke_one` (one call through `csi.invoke_tool`, which
raises on error), `chat` (the SDK's `chat_stream(..., tools=[...])` tool loop).
"""

from typing import Any

from pharia_skill import ChatParams, Csi, InvokeRequest, Message, ToolError, ToolOutput, skill
from pydantic import BaseModel


class Call(BaseModel):
    name: str
    args: dict[str, Any] = {}


class Input(BaseModel):
    mode: str
    calls: list[Call] = []
    text: str = ""
    model: str = "tool-call"
    tools: list[str] = []


class Output(BaseModel):
    result: Any = None


@skill
def mcp_user(csi: Csi, input: Input) -> Output:
    """Lists and calls tools for the engine's MCP tests."""
    if input.mode == "list":
        tools = csi.list_tools()
        return Output(result=[{"name": t.name, "description": t.description, "schema": t.input_schema} for t in tools])
    if input.mode == "invoke":
        results = csi.invoke_tool_concurrent([InvokeRequest(c.name, c.args) for c in input.calls])
        out: list[dict[str, Any]] = []
        for r in results:
            if isinstance(r, ToolOutput):
                out.append({"text": r.text(), "contents": r.contents})
            else:
                out.append({"error": r.message})
        return Output(result=out)
    if input.mode == "invoke_one":
        call = input.calls[0]
        try:
            return Output(result={"text": csi.invoke_tool(call.name, **call.args).text()})
        except ToolError as e:
            return Output(result={"raised": e.message})
    if input.mode == "chat":
        response = csi.chat_stream(input.model, [Message.user(input.text)], ChatParams(max_tokens=64), tools=input.tools)
        return Output(result=response.consume_message().content)
    raise ValueError(f"unknown mode {input.mode}")
