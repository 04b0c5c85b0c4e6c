"""Permissive CORS (engine-spec §2.1), mirroring tower-http's `CorsLayer::very_permissive`.

The request's `Origin`, method and headers are mirrored back with `Access-Control-Allow-Credentials: true`;
preflights (`OPTIONS` with `Access-Control-Request-Method`) are answered here without reaching a route.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VARY = "origin, access-control-request-method, access-control-request-headers"


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
                response_headers.add_vary_header(_VARY)  # one call: the three names in this order
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(send: Send, origin: str | None, method: str, requested: str | None) -> None:
        headers = [
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", method.encode("latin-1")),
            (b"vary", _VARY.encode()),
            (b"content-length", b"0"),
        ]
        if origin is not None:
            headers.append((b"access-control-allow-origin", origin.encode("latin-1")))
        if requested is not None:
            headers.append((b"access-control-allow-headers", requested.encode("latin-1")))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
