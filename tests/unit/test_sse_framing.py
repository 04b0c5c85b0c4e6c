"""SSE framing of message-stream events (skill_engine/streaming.py): byte for byte what the SDK parses,
`event: <name>\\ndata: <compact JSON, ensure_ascii=False>\\n\\n` (engine-spec §2.3)."""

from __future__ import annotations

import json

import pytest

from skill_engine.streaming import (
    MessageAppend,
    MessageBegin,
    MessageEnd,
    MessageStream,
    Reasoning,
    ToolBegin,
    ToolEnd,
    ToolError,
)

EVERY_CODE_POINT = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)


def rendered(*items: object) -> list[bytes]:
    stream = MessageStream()
    return [stream.render(item) for item in items]  # type: ignore[arg-type]


def test_each_event_is_framed_byte_for_byte() -> None:
    assert rendered(
        MessageBegin(),
        MessageAppend('a "quoted" \\ line\nnext\ttab \x01 ü 😀'),
        Reasoning("hm\r"),
        MessageEnd(b'{"n": 1.5, "big": 1e100, "list": [1, "x"]}'),
        MessageBegin("assistant"),
        MessageEnd(None),
        ToolBegin("add"),
        ToolEnd("add"),
        ToolError("add", "no"),
    ) == [
        b'event: message\ndata: {"type":"begin"}\n\n',
        b'event: message\ndata: {"type":"append","text":"a \\"quoted\\" \\\\ line\\nnext\\ttab \\u0001 '
        + "ü 😀".encode()
        + b'"}\n\n',
        b'event: reasoning\ndata: {"type":"reasoning","text":"hm\\r"}\n\n',
        b'event: message\ndata: {"type":"end","payload":{"n":1.5,"big":1e+100,"list":[1,"x"]}}\n\n',
        b'event: message\ndata: {"type":"begin"}\n\n',
        b'event: message\ndata: {"type":"end","payload":null}\n\n',
        b'event: tool\ndata: {"type":"begin","name":"add"}\n\n',
        b'event: tool\ndata: {"type":"end","name":"add"}\n\n',
        b'event: tool\ndata: {"type":"error","name":"add","message":"no"}\n\n',
    ]


@pytest.mark.parametrize(
    ("item", "event", "kind"), [(MessageAppend, "message", "append"), (Reasoning, "reasoning", "reasoning")]
)
def test_text_events_encode_every_code_point_as_the_standard_library_does(
    item: type[MessageAppend | Reasoning], event: str, kind: str
) -> None:
    data = json.dumps({"type": kind, "text": EVERY_CODE_POINT}, separators=(",", ":"), ensure_ascii=False)
    assert rendered(MessageBegin(), item(EVERY_CODE_POINT))[1] == f"event: {event}\ndata: {data}\n\n".encode()
