"""The Aleph Alpha Document Index over HTTP (`DOCUMENT_INDEX_URL`, engine-spec §4.5).

Every call forwards the caller's bearer token; without one it fails with PhariaEngine's token-required
texts. Requests time out after 10 s and are retried up to 3 times with exponential backoff on transient
failures (connection and network errors, timeouts, 408, 429, 5xx; §3.4). Any other non-2xx answer, 404
included, is an error that ends the invocation; its text follows the Rust engine's HTTP client
(`HTTP status client error (404 Not Found) for url (...)`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import httpx

from skill_engine.csi import genai
from skill_engine.csi.calls import CsiContext
from skill_engine.csi.documents.filters import filter_to_json
from skill_engine.csi.errors import CsiError
from skill_engine.csi.retries import DOCUMENT_INDEX
from skill_engine.csi.segments import segment
from skill_engine.csi.types import (
    Document,
    DocumentPath,
    Json,
    Modality,
    SearchRequest,
    SearchResult,
    TextCursor,
    modality_from_json,
)
from skill_engine.telemetry import outbound_headers

log = logging.getLogger("skill_engine.csi.documents")

_TOKEN_HINT = "Please provide a valid token in the Authorization header."
SEARCH_TOKEN_REQUIRED = f"Searching in the Document Index requires a PhariaAI token. {_TOKEN_HINT}"
DOCUMENT_TOKEN_REQUIRED = (
    f"Fetching a document from the Document Index requires a PhariaAI token. {_TOKEN_HINT}"
)
METADATA_TOKEN_REQUIRED = (
    f"Fetching metadata from the Document Index requires a PhariaAI token. {_TOKEN_HINT}"
)
SECTION_TOO_LONG = "Document Index result has more than one item in a section."
INVALID_RESULT = "Invalid search result"

TEXT_ONLY = {"with": [{"modality": "text"}]}
"""Appended to every search: skills only ever see text sections."""


def search_body(request: SearchRequest) -> dict[str, Any]:
    return {
        "query": [{"modality": "text", "text": request.query}],
        "max_results": request.max_results,
        "min_score": request.min_score,
        "filters": [*(filter_to_json(f) for f in request.filters), TEXT_ONLY],
    }


def document_url(base: str, path: DocumentPath) -> str:
    """Every name one percent-encoded path segment (the reference encodes only the document name, which
    lets a skill's `../` in a namespace or collection reach other Document Index routes)."""
    namespace, collection = segment(path.namespace, "namespace"), segment(path.collection, "collection")
    return f"{base}/collections/{namespace}/{collection}/docs/{segment(path.name, 'document name')}"


def search_url(base: str, request: SearchRequest) -> str:
    index = request.index_path
    namespace, collection = segment(index.namespace, "namespace"), segment(index.collection, "collection")
    return f"{base}/collections/{namespace}/{collection}/indexes/{segment(index.index, 'index')}/search"


def _cursor(value: Any) -> TextCursor:
    if not isinstance(value, dict) or value.get("modality", "text") != "text":
        raise CsiError(INVALID_RESULT)
    try:
        return TextCursor(int(value["item"]), int(value["position"]))
    except (KeyError, TypeError, ValueError):
        raise CsiError(INVALID_RESULT) from None


def parse_search_result(value: Any) -> SearchResult:
    if not isinstance(value, dict):
        raise CsiError(INVALID_RESULT)
    section = value.get("section")
    if isinstance(section, list) and len(section) > 1:
        raise CsiError(SECTION_TOO_LONG)
    if not isinstance(section, list) or not section:
        raise CsiError(INVALID_RESULT)
    item = section[0]
    if not isinstance(item, dict) or item.get("modality") != "text" or not isinstance(item.get("text"), str):
        raise CsiError(INVALID_RESULT)
    path = value.get("document_path")
    score = value.get("score")
    if not isinstance(path, dict) or isinstance(score, bool) or not isinstance(score, int | float):
        raise CsiError(INVALID_RESULT)
    try:
        document_path = DocumentPath(str(path["namespace"]), str(path["collection"]), str(path["name"]))
    except KeyError:
        raise CsiError(INVALID_RESULT) from None
    return SearchResult(
        document_path=document_path,
        content=item["text"],
        score=float(score),
        start=_cursor(value.get("start")),
        end=_cursor(value.get("end")),
    )


def parse_contents(value: Any) -> list[Modality]:
    if not isinstance(value, list):
        raise CsiError("Invalid document: `contents` must be a list")
    contents: list[Modality] = []
    for item in value:
        content = modality_from_json(item)
        if content is not None:
            contents.append(content)
        else:
            raise CsiError(f"Invalid document: unsupported content item {str(item)[:200]}")
    return contents


def _status_error(response: httpx.Response) -> CsiError:
    status = response.status_code
    kind = "client" if status < 500 else "server"
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    return CsiError(f"HTTP status {kind} error ({status}{phrase}) for url ({response.request.url})")


class RemoteDocuments:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = dataclasses.replace(DOCUMENT_INDEX, retries=retries, base_delay=backoff)
        self.client = httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _send(self, method: str, url: str, token: str, body: Any = None) -> Any:
        # The Document Index continues the trace (engine-spec §6.1).
        headers = dict(outbound_headers({"Authorization": f"Bearer {token}"}))
        try:
            response = await self.retries.send(
                lambda: self.client.request(method, url, headers=headers, json=body)
            )
        except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError) as e:
            raise CsiError(f"error sending request for url ({url}): {e or type(e).__name__}") from e
        if not response.is_success:
            raise _status_error(response)
        try:
            return response.json()
        except ValueError:
            raise CsiError(f"error decoding response body for url ({url})") from None

    async def search(self, requests: Sequence[SearchRequest], ctx: CsiContext) -> list[list[SearchResult]]:
        if not requests:
            return []
        if ctx.token is None:
            raise CsiError(SEARCH_TOKEN_REQUIRED)
        token = ctx.token

        async def one(request: SearchRequest) -> list[SearchResult]:
            results = await self._send("POST", search_url(self.url, request), token, search_body(request))
            if not isinstance(results, list):
                raise CsiError(INVALID_RESULT)
            return [parse_search_result(r) for r in results]

        return await genai.batch("search", requests, one, genai.search_attributes)

    async def _fetch(self, path: DocumentPath, token: str) -> dict[str, Any]:
        body = await self._send("GET", document_url(self.url, path), token)
        if not isinstance(body, dict):
            raise CsiError("Invalid document: expected a JSON object")
        return body

    async def documents(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Document]:
        if not paths:
            return []
        if ctx.token is None:
            raise CsiError(DOCUMENT_TOKEN_REQUIRED)
        token = ctx.token

        async def one(path: DocumentPath) -> Document:
            body = await self._fetch(path, token)
            return Document(path, parse_contents(body.get("contents")), body.get("metadata"))

        return await genai.batch("document", paths, one, genai.document_attributes)

    async def document_metadata(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Json]:
        if not paths:
            return []
        if ctx.token is None:
            raise CsiError(METADATA_TOKEN_REQUIRED)
        token = ctx.token

        async def one(path: DocumentPath) -> Json:
            metadata: Json = (await self._fetch(path, token)).get("metadata")
            return metadata

        return await genai.batch("document_metadata", paths, one, genai.document_attributes)
