"""A loopback stand-in for PhariaAI's IAM: answers `POST /check_user` and records exactly what it was sent.

Tokens choose the answer: `good-*` grants `KernelAccess`, `bad-*` answers 401, `noperm-*` grants nothing,
`broken-*` answers 500, `garbage-*` answers 200 with a body that is not JSON, `slow-*` waits a second first,
`hang-*` never answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class IamServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/check_user", self.check_user, methods=["POST"])])

    async def check_user(self, request: Request) -> Response:
        raw = await request.body()
        self.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "headers": dict(request.headers),
                "body": raw,
            }
        )
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token.startswith("slow-"):
            await asyncio.sleep(1)
        if token.startswith("hang-"):
            while not await request.is_disconnected():
                await asyncio.sleep(0.05)
            return Response(status_code=499)
        if token.startswith("bad-"):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        if token.startswith("broken-"):
            return Response("internal", status_code=500)
        if token.startswith("garbage-"):
            return Response("<html>", status_code=200)
        permissions = [] if token.startswith("noperm-") else [{"permission": "KernelAccess"}]
        return JSONResponse(
            {"sub": "user-1", "email": "a@example.com", "email_verified": True, "permissions": permissions}
        )
