"""Request body decompression and response compression around every route (engine-spec §2.1).

* Requests with `Content-Encoding` gzip, x-gzip or deflate are decoded before routing; the decoded size
  counts against the 50 MiB body limit (a zip bomb is a 413, not an out-of-memory kill). Encodings the
  standard library cannot decode (br, zstd) are answered 415.
* Responses are gzip-compressed when the client accepts it, except `text/event-stream` and bodies below
  32 bytes (starlette's GZipMiddleware, configured in app.py).
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skill_engine.api.http import MAX_BODY, HttpError

TOO_LARGE = "Failed to buffer the request body: length limit exceeded"
MIN_COMPRESS_SIZE = 32


def _decoder(encoding: str) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib wrapper (RFC 9110); raw deflate below
    raise HttpError(415, f"Unsupported `Content-Encoding`: {encoding}")


def decompress(body: bytes, encoding: str) -> bytes:
    decoder = _decoder(encoding)
    try:
        data = decoder.decompress(body, MAX_BODY + 1)
    except zlib.error:
        if encoding != "deflate":
            raise HttpError(400, "Failed to decompress the request body") from None
        decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data = decoder.decompress(body, MAX_BODY + 1)
        except zlib.error:
            raise HttpError(400, "Failed to decompress the request body") from None
    if len(data) > MAX_BODY or decoder.unconsumed_tail:
        raise HttpError(413, TOO_LARGE)
    if not decoder.eof:
        raise HttpError(400, "Failed to decompress the request body")
    return data


class RequestDecompression:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            await self.app(scope, receive, send)
            return
        try:
            encodings = [e.strip() for e in encoding.split(",") if e.strip() not in ("", "identity")]
            body = await _read(receive)
            for one in reversed(encodings):
                _decoder(one)  # unsupported encodings fail before any work
                body = decompress(body, one)
        except HttpError as e:
            await e.response()(scope, receive, send)
            return
        new_headers = [
            (k, v) for k, v in scope["headers"] if k.lower() not in (b"content-encoding", b"content-length")
        ]
        new_headers.append((b"content-length", str(len(body)).encode()))
        delivered = False

        async def decoded() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": new_headers}, decoded, send)


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "Client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise HttpError(413, TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
