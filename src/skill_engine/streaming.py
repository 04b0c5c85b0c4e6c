"""Message streams: what a stream skill writes, the order PhariaEngine enforces, and the SSE framing.

Each event is exactly `event: <name>\\ndata: <compact JSON>\\n\\n` — no comments, ids or CRLF — because
the SDK's parser expects the event line first, then one data line (engine-spec §2.3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from skill_engine.errors import ExecutionError, InvalidOutput


@dataclass(frozen=True)
class MessageBegin:
    role: str | None = None


@dataclass(frozen=True)
class MessageAppend:
    text: str


@dataclass(frozen=True)
class MessageEnd:
    payload: bytes | None = None


@dataclass(frozen=True)
class Reasoning:
    """Reasoning text a 0.4+ stream skill wrote into the open message."""

    text: str


@dataclass(frozen=True)
class ToolBegin:
    name: str


@dataclass(frozen=True)
class ToolEnd:
    name: str


@dataclass(frozen=True)
class ToolError:
    name: str
    message: str


MessageItem = MessageBegin | MessageAppend | MessageEnd
StreamItem = MessageItem | Reasoning | ToolBegin | ToolEnd | ToolError


class StreamOrderError(ExecutionError):
    status = 500
    metric_status = "logic_error"


_BUG = " This is a bug in the skill. Please contact its developer."
BEGIN_WHILE_ACTIVE = (
    "The skill inserted a message begin into while the previous message has not been ended yet." + _BUG
)
APPEND_WITHOUT_BEGIN = (
    "The skill inserted a message append into the stream, which has not been preceded by a message begin."
    + _BUG
)
END_WITHOUT_BEGIN = (
    "The skill inserted a message end into the stream, which has not been preceded by a message begin." + _BUG
)
REASONING_WITHOUT_BEGIN = (
    "The skill inserted a reasoning message into the stream, which has not been preceded by a message begin."
    + _BUG
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {_dumps(data)}\n\n".encode()


def error_event(message: str) -> bytes:
    return sse("error", {"message": message})


def _text_event(head: bytes, text: str) -> bytes:
    """`head` + the text as a JSON string + `}`: the bytes `sse` makes for a text-only event, without
    building a dict; orjson writes a str exactly as `json.dumps(ensure_ascii=False)` does (every code
    point, tests/unit/test_sse_framing.py)."""
    return head + orjson.dumps(text) + b"}\n\n"


_BEGIN = sse("message", {"type": "begin"})
_END_WITHOUT_PAYLOAD = sse("message", {"type": "end", "payload": None})
_APPEND_HEAD = b'event: message\ndata: {"type":"append","text":'
_REASONING_HEAD = b'event: reasoning\ndata: {"type":"reasoning","text":'


class MessageStream:
    """Validates the order of message items and renders each as an SSE event."""

    def __init__(self) -> None:
        self.message_open = False

    def render(self, item: StreamItem) -> bytes:
        """The SSE bytes for `item`; raises `ExecutionError` for an out-of-order or invalid item."""
        if isinstance(item, MessageBegin):
            if self.message_open:
                raise StreamOrderError(BEGIN_WHILE_ACTIVE)
            self.message_open = True
            return _BEGIN
        if isinstance(item, MessageAppend):
            if not self.message_open:
                raise StreamOrderError(APPEND_WITHOUT_BEGIN)
            return _text_event(_APPEND_HEAD, item.text)
        if isinstance(item, MessageEnd):
            if not self.message_open:
                raise StreamOrderError(END_WITHOUT_BEGIN)
            if item.payload is None:
                self.message_open = False
                return _END_WITHOUT_PAYLOAD
            try:
                payload = json.loads(item.payload)
            except (ValueError, UnicodeDecodeError) as e:
                raise InvalidOutput(str(e)) from None
            self.message_open = False
            return sse("message", {"type": "end", "payload": payload})
        if isinstance(item, Reasoning):
            if not self.message_open:
                raise StreamOrderError(REASONING_WITHOUT_BEGIN)
            return _text_event(_REASONING_HEAD, item.text)
        if isinstance(item, ToolBegin):
            return sse("tool", {"type": "begin", "name": item.name})
        if isinstance(item, ToolEnd):
            return sse("tool", {"type": "end", "name": item.name})
        return sse("tool", {"type": "error", "name": item.name, "message": item.message})
