"""Request body decompression around every route (engine-spec §2.1).

* Requests with `Content-Encoding` gzip, x-gzip or deflate are decoded while the route reads the body,
  so route-level authentication (middleware/auth.py) runs before any inflating; the decoded size counts
  against the 50 MiB body limit as it grows (a zip bomb is a 413 after 50 MiB of output, not an
  out-of-memory kill), and nothing is buffered here. Encodings the standard library cannot decode (br,
  zstd) are answered 415.
* Responses are gzip-compressed when the client accepts it (middleware/compression.py).
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skill_engine.api.http import MAX_BODY, HttpError

TOO_LARGE = "Failed to buffer the request body: length limit exceeded"
DECOMPRESS_FAILED = "Failed to decompress the request body"


def _decoder(encoding: str) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib wrapper (RFC 9110); raw deflate below
    raise HttpError(415, f"Unsupported `Content-Encoding`: {encoding}")


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
                raise HttpError(400, DECOMPRESS_FAILED) from None
            self.decoder = zlib.decompressobj(-zlib.MAX_WBITS)
            self.encoding = "raw deflate"
            try:
                out = self.decoder.decompress(self._start, room + 1)
            except zlib.error:
                raise HttpError(400, DECOMPRESS_FAILED) from None
        self.produced += len(out)
        if self.produced > MAX_BODY:
            raise HttpError(413, TOO_LARGE)
        return out

    def finish(self) -> None:
        if not self.decoder.eof:
            raise HttpError(400, DECOMPRESS_FAILED)


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
            # In place, not a copy: the router leaves its matched route in this scope for the telemetry
            # middleware outside (middleware/telemetry.py).
            scope["headers"] = [
                (k, v)
                for k, v in scope["headers"]
                if k.lower() not in (b"content-encoding", b"content-length")
            ]
            await self.app(scope, _decoding(receive, stages), tracking_send)
        except HttpError as e:
            if started:
                raise
            await e.response()(scope, receive, send)


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
