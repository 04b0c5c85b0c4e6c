"""A small Document Index: answers search and document requests and records what it was sent.

Search results and documents are whatever the test puts into `results` and `documents`. `fail_next` holds
statuses the next requests answer with (in order) before answering normally, to exercise retries. Special
queries: `two-items` answers a section with two items, `image` a section holding an image.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class DocumentIndexServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.documents: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.fail_next: list[int] = []
        self.app = Starlette(
            routes=[
                Route(
                    "/collections/{namespace}/{collection}/indexes/{index}/search",
                    self.search,
                    methods=["POST"],
                ),
                Route(
                    "/collections/{namespace}/{collection}/docs/{name:path}", self.document, methods=["GET"]
                ),
            ]
        )

    async def _record(self, request: Request) -> dict[str, Any]:
        body = await request.json() if request.method == "POST" else None
        entry = {
            "method": request.method,
            "raw_path": request.scope["raw_path"].decode(),
            "authorization": request.headers.get("authorization"),
            "body": body,
        }
        self.requests.append(entry)
        return entry

    def _failure(self) -> Response | None:
        if self.fail_next:
            status = self.fail_next.pop(0)
            return JSONResponse({"error": f"injected {status}"}, status_code=status)
        return None

    def take(self) -> list[dict[str, Any]]:
        """The requests recorded so far, forgetting them."""
        taken, self.requests = self.requests, []
        return taken

    async def search(self, request: Request) -> Response:
        entry = await self._record(request)
        failure = self._failure()
        if failure is not None:
            return failure
        query = entry["body"]["query"][0]["text"]
        p = request.path_params
        path = {"namespace": p["namespace"], "collection": p["collection"], "name": "doc"}
        if query == "two-items":
            section = [{"modality": "text", "text": "a"}, {"modality": "text", "text": "b"}]
            return JSONResponse([self._result(path, section)])
        if query == "image":
            return JSONResponse([self._result(path, [{"modality": "image", "bytes": "AAAA"}])])
        return JSONResponse(self.results.get(query, []))

    @staticmethod
    def _result(path: dict[str, str], section: list[dict[str, Any]]) -> dict[str, Any]:
        cursor = {"modality": "text", "item": 0, "position": 0}
        return {"document_path": path, "section": section, "score": 0.5, "start": cursor, "end": cursor}

    async def document(self, request: Request) -> Response:
        await self._record(request)
        failure = self._failure()
        if failure is not None:
            return failure
        p = request.path_params
        document = self.documents.get((p["namespace"], p["collection"], p["name"]))
        if document is None:
            return JSONResponse({"error": "document not found"}, status_code=404)
        return JSONResponse(document)
