"""Serves a namespace description over HTTP like a team's config repository would, with a switchable
answer (status and body) and a record of the Authorization headers it was sent."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class NamespaceServer:
    def __init__(self, body: str = "skills = []\n") -> None:
        self.status = 200
        self.body = body
        self.authorizations: list[str | None] = []
        self.delay = 0.0
        self.app = Starlette(routes=[Route("/namespace.toml", self.serve, methods=["GET"])])

    def answer(self, status: int, body: str | None = None) -> None:
        self.status = status
        if body is not None:
            self.body = body

    async def serve(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("authorization"))
        await asyncio.sleep(self.delay)
        body = self.body if self.status == 200 else f"status {self.status}"
        return Response(body, status_code=self.status, media_type="application/toml")
