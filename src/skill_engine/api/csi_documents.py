"""JSON shapes of `search`, `documents` and `document_metadata` for CSI over HTTP (engine-spec §2.9.1).

Parsers raise `ValueError` with a serde-like message for bodies of the wrong shape; the CSI route turns it
into its 422 answer.
"""

from __future__ import annotations

from typing import Any

from skill_engine.csi.documents.filters import filter_from_json
from skill_engine.csi.types import (
    Document,
    DocumentPath,
    IndexPath,
    Json,
    SearchRequest,
    SearchResult,
    TextContent,
    TextCursor,
)

U32_MAX = 2**32 - 1


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"invalid type: expected {what}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"invalid type: expected a sequence of {what}")
    return value


def _string(value: dict[str, Any], key: str) -> str:
    if key not in value:
        raise ValueError(f"missing field `{key}`")
    if not isinstance(value[key], str):
        raise ValueError(f"invalid type for `{key}`: expected a string")
    text: str = value[key]
    return text


def document_path_from_json(value: Any) -> DocumentPath:
    path = _object(value, "struct DocumentPath")
    return DocumentPath(_string(path, "namespace"), _string(path, "collection"), _string(path, "name"))


def document_paths_from_json(value: Any) -> list[DocumentPath]:
    return [document_path_from_json(p) for p in _list(value, "DocumentPath")]


def search_request_from_json(value: Any) -> SearchRequest:
    request = _object(value, "struct SearchRequest")
    index = _object(request.get("index_path"), "struct IndexPath in `index_path`")
    max_results = request.get("max_results")
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 0 <= max_results <= U32_MAX:
        raise ValueError("invalid value for `max_results`: expected u32")
    min_score = request.get("min_score")
    if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, int | float)):
        raise ValueError("invalid type for `min_score`: expected f64 or null")
    filters = _list(request.get("filters", []), "Filter")
    return SearchRequest(
        index_path=IndexPath(
            _string(index, "namespace"), _string(index, "collection"), _string(index, "index")
        ),
        query=_string(request, "query"),
        max_results=max_results,
        min_score=None if min_score is None else float(min_score),
        filters=[filter_from_json(f) for f in filters],
    )


def search_requests_from_json(value: Any) -> list[SearchRequest]:
    return [search_request_from_json(r) for r in _list(value, "SearchRequest")]


def document_path_to_json(path: DocumentPath) -> dict[str, str]:
    return {"namespace": path.namespace, "collection": path.collection, "name": path.name}


def _cursor(cursor: TextCursor) -> dict[str, int]:
    return {"item": cursor.item, "position": cursor.position}


def search_result_to_json(result: SearchResult) -> dict[str, Any]:
    return {
        "document_path": document_path_to_json(result.document_path),
        "content": result.content,
        "score": result.score,
        "start": _cursor(result.start),
        "end": _cursor(result.end),
    }


def search_results_to_json(batches: list[list[SearchResult]]) -> list[list[dict[str, Any]]]:
    return [[search_result_to_json(r) for r in batch] for batch in batches]


def document_to_json(document: Document) -> dict[str, Any]:
    return {
        "path": document_path_to_json(document.path),
        "contents": [
            {"modality": "text", "text": c.text} if isinstance(c, TextContent) else {"modality": "image"}
            for c in document.contents
        ],
        "metadata": document.metadata,
    }


def documents_to_json(documents: list[Document]) -> list[dict[str, Any]]:
    return [document_to_json(d) for d in documents]


def metadata_to_json(metadata: list[Json]) -> list[Json]:
    return metadata
