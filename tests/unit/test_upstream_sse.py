"""Upstream event streams are parsed by httpx-sse (csi/inference/streams.py `sse_data`)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest

from skill_engine.csi.errors import CsiError
from skill_engine.csi.inference.streams import sse_data


def payloads(body: bytes, content_type: str = "text/event-stream") -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        response = httpx.Response(200, headers={"content-type": content_type}, content=body)
        return [chunk async for chunk in sse_data(response)]

    return asyncio.run(collect())


def test_a_data_field_over_several_lines_is_one_payload() -> None:
    body = (
        b'data: {"choices": [],\ndata:  "id": "x"}\n\n: keep-alive\n\ndata: {"id": "y"}\n\ndata: [DONE]\n\n'
    )
    assert payloads(body) == [{"choices": [], "id": "x"}, {"id": "y"}]


def test_nothing_after_done_is_read() -> None:
    assert payloads(b'data: {"id": 1}\n\ndata: [DONE]\n\ndata: {"id": 2}\n\n') == [{"id": 1}]


def test_an_error_event_and_an_invalid_chunk_are_csi_errors() -> None:
    with pytest.raises(CsiError, match="The inference backend reported an error mid-stream: overloaded"):
        payloads(b'data: {"error": "overloaded"}\n\n')
    with pytest.raises(CsiError) as invalid:
        payloads(b"data: {nope\n\n")
    assert str(invalid.value) == "The inference backend sent an invalid stream chunk: {nope"


def test_payloads_parse_as_the_standard_library_parses_them() -> None:
    """orjson parses the chunks; what only json accepts (NaN, integers beyond 64 bits) still parses."""
    [chunk] = payloads(
        b'data: {"n": NaN, "big": 123456789012345678901234567890, "t": "\\u00fc\\ud83d\\ude00"}\n\n'
    )
    assert math.isnan(chunk["n"])
    assert chunk["big"] == 123456789012345678901234567890
    assert chunk["t"] == "ü😀"
