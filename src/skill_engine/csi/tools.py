"""Tools a skill can list and invoke: PhariaEngine's native test tools; MCP servers come later.

Tool errors are results, not failures: they go back to the skill as strings (engine-spec §8).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from skill_engine.csi.errors import CsiError
from skill_engine.csi.inference import fan_out
from skill_engine.csi.types import InvokeRequest, Tool, ToolOutput, ToolResult

NATIVE_TOOL_NAMES = ("add", "subtract", "saboteur")
TEST_BETA = "test-beta"


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

    def __init__(self) -> None:
        self._native: dict[str, list[str]] = {TEST_BETA: list(NATIVE_TOOL_NAMES)}

    def set_native_tools(self, namespace: str, names: Sequence[str]) -> None:
        if namespace != TEST_BETA:
            self._native[namespace] = [n for n in names if n in NATIVE_TOOLS]

    def knows(self, namespace: str) -> bool:
        return namespace in self._native

    def list_tools(self, namespace: str) -> list[Tool]:
        return sorted((NATIVE_TOOLS[n].tool for n in self._native.get(namespace, [])), key=lambda t: t.name)

    def list_for_http(self, namespace: str) -> list[Tool]:
        if namespace not in self._native:
            raise CsiError(
                f'You tried to list the tools for a namespace that does not exist: Namespace("{namespace}")'
            )
        return self.list_tools(namespace)

    async def invoke(self, namespace: str, requests: Sequence[InvokeRequest]) -> list[ToolResult]:
        async def one(request: InvokeRequest) -> ToolResult:
            if request.name not in self._native.get(namespace, []):
                return f"Tool {request.name} not found on any server."
            try:
                return ToolOutput([NATIVE_TOOLS[request.name].run(request)])
            except ToolFailure as e:
                return str(e)

        return await fan_out(requests, one)
