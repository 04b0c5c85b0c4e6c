"""Response compression (middleware/compression.py): small bodies take the cheap compressor, and every
client still gets a gzip stream that decodes to the same bytes."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from skill_engine.middleware.compression import ResponseCompression

SMALL = b'{"result":{"name":"Homer","n":42}}'
LARGE = b'{"text":"' + b"the quick brown fox " * 400 + b'"}'


async def body(request: Request) -> Response:
    size = request.path_params["size"]
    return Response(SMALL if size == "small" else LARGE, media_type="application/json")


app = Starlette(
    routes=[Route("/{size}", body)], middleware=[Middleware(ResponseCompression, minimum_size=32)]
)


def fetch(path: str, encoding: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (not decoded by httpx)."""

    async def go() -> tuple[httpx.Response, bytes]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            request = client.build_request("GET", path, headers={"accept-encoding": encoding})
            response = await client.send(request, stream=True)
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            return response, raw

    return asyncio.run(go())


@pytest.mark.parametrize(("path", "expected"), [("/small", SMALL), ("/large", LARGE)])
def test_gzip_on_request_decodes_to_the_same_bytes(path: str, expected: bytes) -> None:
    response, raw = fetch(path, "gzip, deflate")
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(raw)
    assert gzip.decompress(raw) == expected


def test_without_gzip_the_body_is_sent_as_is() -> None:
    response, raw = fetch("/small", "identity")
    assert "content-encoding" not in response.headers
    assert raw == SMALL
