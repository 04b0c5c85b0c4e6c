"""Management API of the embedded document index, in the Document Index's vocabulary (docs/documents.md).

    PUT    /v1/documents/{namespace}/{collection}/indexes/{index}   {"chunk_size"?, "chunk_overlap"?}
    GET    /v1/documents/{namespace}/{collection}/indexes/{index}
    DELETE /v1/documents/{namespace}/{collection}/indexes/{index}
    GET    /v1/documents/{namespace}/{collection}                   names of its documents
    PUT    /v1/documents/{namespace}/{collection}/{name}             {"contents": [modality...], "metadata"?}
    GET    /v1/documents/{namespace}/{collection}/{name}
    DELETE /v1/documents/{namespace}/{collection}/{name}

`{namespace}` is a document namespace, not an engine namespace. Every route requires
`Authorization: Bearer <DOCUMENTS__ADMIN_TOKEN>`: without a configured admin token they answer 403, a missing
token 401, a wrong one 403. With DOCUMENT_INDEX_URL set, the embedded index is not in use: they answer 409.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from skill_engine.api.http import HttpError, json_response, read_body
from skill_engine.csi.documents.embedded import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    EmbeddedDocuments,
    IndexConfig,
    contents_to_json,
)
from skill_engine.csi.types import DocumentPath, IndexPath, Json, Modality, modality_from_json

NO_ADMIN_TOKEN = (
    "The document management API is disabled because no admin token is configured. Set "
    "DOCUMENTS__ADMIN_TOKEN (or `admin-token` in the [documents] table of config.toml) and send it as "
    "`Authorization: Bearer <token>`."
)
TOKEN_EXPECTED = "Bearer token expected"
TOKEN_INVALID = "Bearer token invalid"
REMOTE_INDEX = (
    "The embedded document index is not in use: this engine is configured with DOCUMENT_INDEX_URL, so "
    "documents are managed in that Document Index."
)
MAX_NAME = 1000
_LARGE = 1024 * 1024

Handler = Callable[["DocumentRoutes", Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    """Checks the admin token before anything else."""

    async def wrapped(self: DocumentRoutes, request: Request) -> Response:
        request.state.index = self._authorize(request)
        return await handler(self, request)

    wrapped.__name__ = handler.__name__
    return wrapped


def _part(request: Request, key: str) -> str:
    value: str = request.path_params[key]
    if not value or len(value) > MAX_NAME:
        raise HttpError(400, f"Invalid `{key}`: must be 1 to {MAX_NAME} characters long.")
    return value


def document_path(request: Request) -> DocumentPath:
    return DocumentPath(_part(request, "namespace"), _part(request, "collection"), _part(request, "name"))


def index_path(request: Request) -> IndexPath:
    return IndexPath(_part(request, "namespace"), _part(request, "collection"), _part(request, "index"))


async def _json(request: Request) -> Any:
    raw = await read_body(request)
    try:
        if len(raw) > _LARGE:
            return await asyncio.to_thread(json.loads, raw)
        return json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HttpError(400, f"Failed to parse the request body as JSON: {e}") from None


def parse_document_body(body: Any) -> tuple[list[Modality], Json]:
    """`{"schema_version"?: "V1", "contents": [{"modality": "text", "text": ...} | {"modality": "image"}],
    "metadata"?: <any JSON>}`; image bytes are accepted but not kept (skills only ever see `image`)."""
    if not isinstance(body, dict):
        raise HttpError(400, 'The body must be a JSON object: {"contents": [...], "metadata": ...}')
    version = body.get("schema_version", "V1")
    if version != "V1":
        raise HttpError(400, f'Unsupported `schema_version` {json.dumps(version)}: only "V1" is supported.')
    raw_contents = body.get("contents")
    if not isinstance(raw_contents, list) or not raw_contents:
        raise HttpError(
            400, '`contents` must be a non-empty list like [{"modality": "text", "text": "..."}].'
        )
    contents: list[Modality] = []
    for position, item in enumerate(raw_contents):
        content = modality_from_json(item)
        if content is not None:
            contents.append(content)
        else:
            raise HttpError(
                400,
                f'`contents[{position}]` must be {{"modality": "text", "text": <string>}} or '
                '{"modality": "image", ...}.',
            )
    metadata: Json = body.get("metadata")
    return contents, metadata


def parse_index_body(body: Any) -> IndexConfig:
    """`{"chunk_size"?: int, "chunk_overlap"?: int}` in characters; other keys (e.g. `embedding`) ignored."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise HttpError(400, 'The body must be a JSON object: {"chunk_size": 1000, "chunk_overlap": 0}')
    size = body.get("chunk_size", DEFAULT_CHUNK_SIZE)
    overlap = body.get("chunk_overlap", DEFAULT_CHUNK_OVERLAP)
    for key, value in (("chunk_size", size), ("chunk_overlap", overlap)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise HttpError(400, f"`{key}` must be an integer (characters).")
    config = IndexConfig(size, overlap)
    try:
        config.validate()
    except ValueError as e:
        raise HttpError(400, f"Invalid index configuration: {e}.") from None
    return config


class DocumentRoutes:
    def __init__(self, index: EmbeddedDocuments | None, admin_token: str | None) -> None:
        self.index = index
        self.admin_token = admin_token

    def routes(self) -> list[Route]:
        base = "/v1/documents/{namespace}/{collection}"
        return [
            Route(f"{base}/indexes/{{index}}", self.put_index, methods=["PUT"]),
            Route(f"{base}/indexes/{{index}}", self.get_index, methods=["GET"]),
            Route(f"{base}/indexes/{{index}}", self.delete_index, methods=["DELETE"]),
            Route(base, self.list_documents, methods=["GET"]),
            Route(f"{base}/{{name:path}}", self.put_document, methods=["PUT"]),
            Route(f"{base}/{{name:path}}", self.get_document, methods=["GET"]),
            Route(f"{base}/{{name:path}}", self.delete_document, methods=["DELETE"]),
        ]

    def _authorize(self, request: Request) -> EmbeddedDocuments:
        if self.admin_token is None:
            raise HttpError(403, NO_ADMIN_TOKEN)
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, TOKEN_EXPECTED, {"www-authenticate": "Bearer"})
        if not hmac.compare_digest(token.strip().encode(), self.admin_token.encode()):
            raise HttpError(403, TOKEN_INVALID)
        if self.index is None:
            raise HttpError(409, REMOTE_INDEX)
        return self.index

    @staticmethod
    def _store(request: Request) -> EmbeddedDocuments:
        index: EmbeddedDocuments = request.state.index
        return index

    @_guarded
    async def put_document(self, request: Request) -> Response:
        path = document_path(request)
        contents, metadata = parse_document_body(await _json(request))
        await self._store(request).run(lambda store: store.put_document(path, contents, metadata))
        return Response(status_code=204)

    @_guarded
    async def get_document(self, request: Request) -> Response:
        path = document_path(request)
        document = await self._store(request).run(lambda store: store.get_document(path))
        if document is None:
            raise HttpError(404, f"Document `{path.namespace}/{path.collection}/{path.name}` not found.")
        return json_response(
            {
                "path": {"namespace": path.namespace, "collection": path.collection, "name": path.name},
                "contents": contents_to_json(document.contents),
                "metadata": document.metadata,
            }
        )

    @_guarded
    async def delete_document(self, request: Request) -> Response:
        path = document_path(request)
        if not await self._store(request).run(lambda store: store.delete_document(path)):
            raise HttpError(404, f"Document `{path.namespace}/{path.collection}/{path.name}` not found.")
        return Response(status_code=204)

    @_guarded
    async def list_documents(self, request: Request) -> Response:
        namespace, collection = _part(request, "namespace"), _part(request, "collection")
        names = await self._store(request).run(lambda store: store.list_documents(namespace, collection))
        return json_response(names)

    @_guarded
    async def put_index(self, request: Request) -> Response:
        path = index_path(request)
        config = parse_index_body(await _json(request))
        await self._store(request).run(lambda store: store.put_index(path, config))
        return Response(status_code=204)

    @_guarded
    async def get_index(self, request: Request) -> Response:
        path = index_path(request)
        config = await self._store(request).run(lambda store: store.get_index(path))
        if config is None:
            raise HttpError(404, f"Index `{path.namespace}/{path.collection}/{path.index}` not found.")
        return json_response({"chunk_size": config.chunk_size, "chunk_overlap": config.chunk_overlap})

    @_guarded
    async def delete_index(self, request: Request) -> Response:
        path = index_path(request)
        if not await self._store(request).run(lambda store: store.delete_index(path)):
            raise HttpError(404, f"Index `{path.namespace}/{path.collection}/{path.index}` not found.")
        return Response(status_code=204)
