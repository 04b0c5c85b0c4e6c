"""Response compression (engine-spec §2.1): starlette's GZipMiddleware, with a cheap compressor for small
bodies.

Responses are gzip-compressed when the client accepts it, except `text/event-stream` and bodies below
`MIN_COMPRESS_SIZE` bytes (as PhariaEngine's tower-http layer). A compressor with zlib's default window
and memory level allocates and clears ~270 KiB of state: for a trivial `/run` answer of 35 bytes that
was ~60-150 µs of the event loop's time per request, more than compressing it. A whole body of at most
`SMALL_BODY` bytes fits a 1 KiB window, so it is compressed with one (and the smallest hash table):
the same level, a valid gzip stream of the same bytes, ~10x less work. Streamed and larger bodies keep
starlette's settings.
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware, GZipResponder
from starlette.types import Receive, Scope, Send

MIN_COMPRESS_SIZE = 32
SMALL_BODY = 1024
_SMALL_WBITS = 10  # a 1 KiB window: every back-reference of a body of at most SMALL_BODY bytes fits
_SMALL_MEM_LEVEL = 1


class _Responder(GZipResponder):
    def _compress_body(self, body: bytes, more_body: bool) -> bytes:
        if self._compressor is None and not more_body and len(body) <= SMALL_BODY:
            self._compressor = zlib.compressobj(
                self.compresslevel, zlib.DEFLATED, 16 + _SMALL_WBITS, _SMALL_MEM_LEVEL
            )
        return super()._compress_body(body, more_body)


class ResponseCompression(GZipMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "gzip" in Headers(scope=scope).get("accept-encoding", ""):
            responder = _Responder(
                self.app,
                self.minimum_size,
                compresslevel=self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=self.exclude_content_types,
            )
            await responder(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
