"""The native tool `execute_python`: arguments in, the sandbox's outcome as JSON text out.

A program that ran without an exception is a tool result; one that failed (exception, syntax error, time
or memory limit, ...) is a tool error whose text is the same JSON object with `error` set, so a model can
read the traceback and fix its code. Either way the text parses as
`{"stdout", "stderr", "result", "error": null | {"type", "message", "traceback"}}`.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.trace import Status, StatusCode

from skill_engine import telemetry
from skill_engine.csi import CsiContext
from skill_engine.csi.tool_names import EXECUTE_PYTHON
from skill_engine.csi.tools import ProvidedTool, ToolCaller, ToolFailure
from skill_engine.csi.types import InvokeRequest, Tool
from skill_engine.sandbox.executor import CodeSandbox, Outcome

DESCRIPTION = (
    "Runs a Python 3 program in a fresh sandbox (standard library only; no files, network or environment) "
    "and returns JSON with its `stdout`, `stderr`, `result` (the value of the final expression, or of a "
    "variable named `result`) and `error` (exception type, message and traceback, or null). The optional "
    "`input` is available to the program as the variable `input`. The namespace's other tools can be "
    "called as functions: `tools.add(a=1, b=2)`, or `tools.call('tool-name', **arguments)`; a failing tool "
    "raises `ToolError`."
)

SCHEMA: dict[str, object] = {
    "properties": {
        "code": {"title": "Code", "type": "string", "description": "The Python program to run."},
        "input": {"title": "Input", "description": "Any JSON value, bound to the variable `input`."},
    },
    "required": ["code"],
    "title": "execute_pythonArguments",
    "type": "object",
}


def execute_python(sandbox: CodeSandbox) -> ProvidedTool:
    async def run(request: InvokeRequest, caller: ToolCaller) -> str:
        code, input = _arguments(request)
        _namespace, skill = telemetry.current_skill()
        ctx = CsiContext(caller.namespace, skill or EXECUTE_PYTHON, caller.token)
        content = telemetry.current().content_capture
        attributes = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": EXECUTE_PYTHON,
            "gen_ai.tool.type": "function",
        }
        with telemetry.span("code_execution", attributes) as span:
            if span is not None and content:
                span.set_attribute("gen_ai.tool.call.arguments", json.dumps({"code": code, "input": input}))
            outcome = await sandbox.execute(code, input, ctx)
            text = json.dumps(outcome.to_json())
            if span is not None:
                _record(span, outcome, text if content else None)
        if not outcome.ok:
            raise ToolFailure(text)
        return text

    return ProvidedTool(Tool(EXECUTE_PYTHON, DESCRIPTION, SCHEMA), run)


def _arguments(request: InvokeRequest) -> tuple[str, Any]:
    code: Any = None
    input: Any = None
    for argument in request.arguments:
        if argument.name not in ("code", "input"):
            continue
        try:
            value = json.loads(argument.value)
        except (ValueError, UnicodeDecodeError) as e:
            raise ToolFailure(f"Error deserializing argument {argument.name}: {e}") from None
        if argument.name == "code":
            code = value
        else:
            input = value
    if code is None:
        raise ToolFailure("Argument code not specified")
    if not isinstance(code, str):
        raise ToolFailure(f"Error deserializing argument code: expected a string, got {type(code).__name__}")
    return code, input


def _record(span: Any, outcome: Outcome, text: str | None) -> None:
    if outcome.error is not None:
        span.set_attribute("error.type", outcome.error["type"])
        span.set_status(Status(StatusCode.ERROR, outcome.error["type"]))
    if text is not None:
        span.set_attribute("gen_ai.tool.call.result", text)
