"""HTTP behaviour around every route (engine-spec §2.1): permissive CORS, request body decompression and
response compression (except event streams).

* CORS mirrors tower-http's `CorsLayer::very_permissive`: the request's `Origin`, method and headers are
  mirrored back with `Access-Control-Allow-Credentials: true`; preflights (`OPTIONS` with
  `Access-Control-Request-Method`) are answered here without reaching a route.
* Requests with `Content-Encoding` gzip, x-gzip or deflate are decoded while the route reads the body,
  after authentication (this middleware sits inside AuthMiddleware); the decoded size counts against the
  50 MiB body limit as it grows (a zip bomb is a 413 after 50 MiB of output, not an out-of-memory kill).
  Encodings the standard library cannot decode (br, zstd) are answered 415.
* Responses are gzip-compressed when the client accepts it, except `text/event-stream` and bodies below
  32 bytes (starlette's GZipMiddleware, configured in app.py).
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skill_engine.api.http import MAX_BODY, HttpError

TOO_LARGE = "Failed to buffer the request body: length limit exceeded"
DECOMPRESS_FAILED = "Failed to decompress the request body"
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


class _Refused(HttpError):
    """Raised by the decoding `receive`; routes answer it like their own body errors."""


def _decoder(encoding: str) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib wrapper (RFC 9110); raw deflate below
    raise _Refused(415, f"Unsupported `Content-Encoding`: {encoding}")


class _Stage:
    """One `Content-Encoding` layer, decoded chunk by chunk with its output capped at `MAX_BODY`."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.decoder = _decoder(encoding)
        self.produced = 0
        self._start = b""  # the first input, kept to retry a `deflate` body as raw deflate

    def feed(self, data: bytes) -> bytes:
        if not self.produced and len(self._start) < 1024:
            self._start += data
        room = MAX_BODY - self.produced
        try:
            out = self.decoder.decompress(data, room + 1)
        except zlib.error:
            if self.encoding != "deflate" or self.produced or len(self._start) >= 1024:
                raise _Refused(400, DECOMPRESS_FAILED) from None
            self.decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            self.encoding = "raw deflate"
            try:
                out = self.decoder.decompress(self._start, room + 1)
            except zlib.error:
                raise _Refused(400, DECOMPRESS_FAILED) from None
        self.produced += len(out)
        if self.produced > MAX_BODY:
            raise _Refused(413, TOO_LARGE)
        return out

    def finish(self) -> None:
        if not self.decoder.eof:
            raise _Refused(400, DECOMPRESS_FAILED)


class RequestDecompression:
    """Decodes compressed request bodies while they stream in; nothing is read before the route asks
    (authentication runs first, docs/security.md), and at most `MAX_BODY` decoded bytes are produced."""

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
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            encodings = [e.strip() for e in encoding.split(",") if e.strip() not in ("", "identity")]
            stages = [_Stage(one) for one in reversed(encodings)]  # unsupported encodings fail first
            new_headers = [
                (k, v)
                for k, v in scope["headers"]
                if k.lower() not in (b"content-encoding", b"content-length")
            ]
            await self.app({**scope, "headers": new_headers}, _decoding(receive, stages), tracking_send)
        except _Refused as e:
            if started:
                raise
            await _refuse(send, e)


def _decoding(receive: Receive, stages: list[_Stage]) -> Receive:
    async def decoded() -> Message:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message
            data = message.get("body", b"")
            for stage in stages:
                if data:
                    data = stage.feed(data)
            more = message.get("more_body", False)
            if not more:
                for stage in stages:
                    stage.finish()
            if data or not more:
                return {"type": "http.request", "body": data, "more_body": more}

    return decoded


async def _refuse(send: Send, error: _Refused) -> None:
    data = error.text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
