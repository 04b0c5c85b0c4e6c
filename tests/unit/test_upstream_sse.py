"""Upstream event streams (csi/inference/streams.py `sse_data`): httpx-sse's rules, split on bytes by the
engine; the same payloads and the same errors as httpx-sse for any body, however it is chunked."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import EventSource, SSEError

from skill_engine.csi.errors import CsiError
from skill_engine.csi.inference.streams import DRAIN_SECONDS, SseSplitter, sse_data


def payloads(body: bytes, content_type: str = "text/event-stream") -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        response = httpx.Response(200, headers={"content-type": content_type}, content=body)
        return [chunk async for chunk in sse_data(response)]

    return asyncio.run(collect())


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: Sequence[bytes], then_hang: bool = False) -> None:
        self.chunks = chunks
        self.then_hang = then_hang
        self.ended = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.then_hang:
            await asyncio.sleep(3600)
        self.ended = True


async def httpx_sse_payloads(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """What the engine did before it split events itself (session 5's `sse_data`), the reference."""
    try:
        async for event in EventSource(response).aiter_sse():
            data = event.data
            if not data:
                continue
            if data.strip() == "[DONE]":
                return
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                try:
                    parsed = json.loads(data)
                except ValueError:
                    message = f"The inference backend sent an invalid stream chunk: {data[:200]}"
                    raise CsiError(message) from None
            if isinstance(parsed, dict):
                if "error" in parsed and "choices" not in parsed:
                    raise CsiError(f"The inference backend reported an error mid-stream: {parsed['error']}")
                yield parsed
    except SSEError as e:
        raise CsiError(f"The inference backend did not answer with an event stream: {e}") from None


def outcome(read: Any, chunks: Sequence[bytes], content_type: str) -> tuple[list[Any], str | None]:
    """(payloads, error message or None) of reading `chunks` as one response body."""

    async def collect() -> tuple[list[Any], str | None]:
        response = httpx.Response(200, headers={"content-type": content_type}, stream=Chunks(chunks))
        seen: list[Any] = []
        try:
            async for payload in read(response):
                seen.append(payload)
        except CsiError as e:
            return seen, str(e)
        return seen, None

    return asyncio.run(collect())


PIECES = [
    b'data: {"id": 1}\n\n',
    b'data: {"id": 2}\r\n\r\n',
    b'data: {"id": 3}\r\r',
    b'data:{"a": [1,\ndata: 2]}\n\n',
    b'data: {"m": 1,\r\ndata: "k": 2}\r\n\r\n',
    b"data\n\n",
    b"data:\n\n",
    b": keep-alive\n\n",
    b"event: ping\nid: 7\nretry: 10\n\n",
    b'id: 1\ndata: {"x": "\xc3\xbc\xf0\x9f\x98\x80"}\n\n',
    b'data: {"bad": "\xff\xfe"}\n\n',
    b'data: {"e": "\xe2\x82"}\n\n',
    b'\xef\xbb\xbfdata: {"bom": 1}\n\n',
    b'data: {"n": NaN}\n\n',
    b"data: [1, 2]\n\n",
    b'DATA: {"case": 1}\n\n',
    b'data : {"space": 1}\n\n',
    b'data:  {"two": 1}\n\n',
    b"\n\n\r\n",
    b"data: [DONE]\n\n",
    b"data:  [DONE] \n\n",
    b'data: {"error": "overloaded"}\n\n',
    b'data: {"error": "x", "choices": []}\n\n',
    b"data: {nope\n\n",
    b'data: {"last": 1}',
    b'data: {"last": 2}\n',
    b'data: {"last": 3}\r',
]


def test_the_same_payloads_and_errors_as_httpx_sse_however_the_body_is_chunked() -> None:
    rng = random.Random(15)
    for _ in range(600):
        body = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 6)))
        cuts = sorted(rng.sample(range(len(body) + 1), k=min(len(body) + 1, rng.randint(0, 8))))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if body[a:b]]
        content_type = rng.choice(["text/event-stream", "text/event-stream; charset=utf-8", "text/plain"])
        assert outcome(sse_data, chunks, content_type) == outcome(httpx_sse_payloads, chunks, content_type), (
            chunks,
            content_type,
        )


def test_a_charset_other_than_utf8_is_decoded_as_declared() -> None:
    chunks = ['data: {"t": "\u00fc"}\n\n'.encode("utf-16-le")]
    content_type = "text/event-stream; charset=utf-16-le"
    assert outcome(sse_data, chunks, content_type) == ([{"t": "ü"}], None)
    assert outcome(sse_data, chunks, content_type) == outcome(httpx_sse_payloads, chunks, content_type)


def test_a_compressed_stream_is_decoded_and_a_plain_one_read_as_sent() -> None:
    body = b"".join(b'data: {"n": %d}\n\n' % n for n in range(50)) + b"data: [DONE]\n\n"
    compressed = gzip.compress(body)

    async def read(chunks: Sequence[bytes], coding: str | None) -> list[Any]:
        headers = {"content-type": "text/event-stream"}
        if coding is not None:
            headers["content-encoding"] = coding
        response = httpx.Response(200, headers=headers, stream=Chunks(chunks))
        return [payload async for payload in sse_data(response)]

    expected = [{"n": n} for n in range(50)]
    pieces = [compressed[i : i + 7] for i in range(0, len(compressed), 7)]
    assert asyncio.run(read(pieces, "gzip")) == expected
    assert asyncio.run(read(pieces, " GZIP ")) == expected
    assert asyncio.run(read([body[:33], body[33:]], None)) == expected
    assert asyncio.run(read([body], "identity")) == expected


def test_the_splitter_keeps_a_line_cut_anywhere() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"da") == []
    assert splitter.feed(b"ta: 1\r") == []
    assert splitter.feed(b"\ndata: 2\r") == []
    assert splitter.feed(b"\r") == [b"1\n2"]


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


def test_the_body_after_done_is_read_to_its_end_so_the_connection_can_be_reused() -> None:
    """httpcore pools a connection only once its response body was read to the end."""

    async def read(body: Chunks) -> tuple[list[Any], float]:
        response = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)
        started = time.monotonic()
        seen = [payload async for payload in sse_data(response)]
        return seen, time.monotonic() - started

    rest = Chunks([b'data: {"id": 1}\n\ndata: [DONE]\n\n', b": bye\n\n", b"data: {}\n\n"])
    assert asyncio.run(read(rest))[0] == [{"id": 1}]
    assert rest.ended

    too_much = Chunks([b"data: [DONE]\n\n", *[b": x" * 30000] * 3])
    assert asyncio.run(read(too_much))[0] == []
    assert not too_much.ended  # at most DRAIN_BYTES more are read

    hangs = Chunks([b'data: {"id": 1}\n\ndata: [DONE]\n\n'], then_hang=True)
    seen, took = asyncio.run(read(hangs))
    assert seen == [{"id": 1}]
    assert took < DRAIN_SECONDS + 1.0
