"""HTTP behaviour around every route (engine-spec §2.1): permissive CORS, request body decompression and
response compression (except event streams).

* CORS mirrors tower-http's `CorsLayer::very_permissive`: the request's `Origin`, method and headers are
  mirrored back with `Access-Control-Allow-Credentials: true`; preflights (`OPTIONS` with
  `Access-Control-Request-Method`) are answered here without reaching a route.
* Requests with `Content-Encoding` gzip, x-gzip or deflate are decoded before routing; the decoded size
  counts against the 50 MiB body limit (a zip bomb is a 413, not an out-of-memory kill). Encodings the
  standard library cannot decode (br, zstd) are answered 415.
* Responses are gzip-compressed when the client accepts it, except `text/event-stream` and bodies below
  32 bytes (starlette's GZipMiddleware, configured in app.py).
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skill_engine.api.http import MAX_BODY

TOO_LARGE = "Failed to buffer the request body: length limit exceeded"
MIN_COMPRESS_SIZE = 32


class PermissiveCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        method = headers.get("access-control-request-method")
        if scope["method"] == "OPTIONS" and method is not None:
            await self._preflight(send, origin, method, headers.get("access-control-request-headers"))
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                if origin is not None:
                    response_headers["access-control-allow-origin"] = origin
                response_headers["access-control-allow-credentials"] = "true"
                response_headers.add_vary_header("origin")
                response_headers.add_vary_header("access-control-request-method")
                response_headers.add_vary_header("access-control-request-headers")
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(send: Send, origin: str | None, method: str, requested: str | None) -> None:
        headers = [
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", method.encode("latin-1")),
            (b"vary", b"origin, access-control-request-method, access-control-request-headers"),
            (b"content-length", b"0"),
        ]
        if origin is not None:
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        if requested is not None:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _decoder(encoding: str) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib wrapper (RFC 9110); raw deflate below
    raise _Refused(415, f"Unsupported `Content-Encoding`: {encoding}")


def decompress(body: bytes, encoding: str) -> bytes:
    decoder = _decoder(encoding)
    try:
        data = decoder.decompress(body, MAX_BODY + 1)
    except zlib.error:
        if encoding != "deflate":
            raise _Refused(400, "Failed to decompress the request body") from None
        decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data = decoder.decompress(body, MAX_BODY + 1)
        except zlib.error:
            raise _Refused(400, "Failed to decompress the request body") from None
    if len(data) > MAX_BODY or decoder.unconsumed_tail:
        raise _Refused(413, TOO_LARGE)
    if not decoder.eof:
        raise _Refused(400, "Failed to decompress the request body")
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
        except _Refused as e:
            data = e.text.encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": e.status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(data)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": data})
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
            raise _Refused(400, "Client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _Refused(413, TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
