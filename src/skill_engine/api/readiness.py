"""`GET /ready`: whether this replica takes new work, for Kubernetes' readiness probe and load balancers.

`/health` (liveness) stays `ok` until the process exits; `/ready` turns 503 `draining` at the first
SIGTERM (shutdown.py sets `draining`), while in-flight invocations finish. uvicorn closes the listening
socket at that moment too, so new connections are refused at once and a balancer moves on; the 503 is
what a probe or a balancer sees on a connection it already had open.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response


class Readiness:
    def __init__(self) -> None:
        self.draining = False

    async def ready(self, request: Request) -> Response:
        if self.draining:
            return PlainTextResponse("draining", status_code=503, headers={"Connection": "close"})
        return PlainTextResponse("ready")
