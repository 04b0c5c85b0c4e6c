"""JSON shapes of the document functions for CSI over HTTP (engine-spec §2.9.1)."""

from __future__ import annotations

from typing import Any

import pytest

from skill_engine.api.csi_documents import (
    document_paths_from_json,
    documents_to_json,
    search_requests_from_json,
    search_results_to_json,
)
from skill_engine.csi.types import (
    Document,
    DocumentPath,
    ImageContent,
    IndexPath,
    MetadataCondition,
    MetadataFilter,
    SearchFilter,
    SearchResult,
    TextContent,
    TextCursor,
)


def test_search_request_with_filters() -> None:
    [request] = search_requests_from_json(
        [
            {
                "query": "q",
                "index_path": {"namespace": "n", "collection": "c", "index": "i"},
                "max_results": 3,
                "filters": [{"without": [{"metadata": {"field": "f", "equal_to": False}}]}],
            }
        ]
    )
    assert request.index_path == IndexPath("n", "c", "i")
    assert request.min_score is None
    assert request.filters == [
        SearchFilter("without", [MetadataFilter("f", MetadataCondition("equal_to", False))])
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "expected a sequence"),
        ([{"query": "q", "max_results": 1}], "expected struct IndexPath"),
        ([{"query": "q", "index_path": {"namespace": "n", "collection": "c"}, "max_results": 1}], "`index`"),
        ([{"query": "q", "index_path": {"namespace": "n", "collection": "c", "index": "i"}}], "max_results"),
        (
            [
                {
                    "query": "q",
                    "index_path": {"namespace": "n", "collection": "c", "index": "i"},
                    "max_results": 1,
                    "filters": [{"with": [{"metadata": {"field": "f", "like": "x"}}]}],
                }
            ],
            "exactly one condition",
        ),
    ],
)
def test_bad_search_requests(body: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        search_requests_from_json(body)


def test_paths_results_and_documents() -> None:
    assert document_paths_from_json([{"namespace": "n", "collection": "c", "name": "a/b"}]) == [
        DocumentPath("n", "c", "a/b")
    ]
    with pytest.raises(ValueError, match="missing field `name`"):
        document_paths_from_json([{"namespace": "n", "collection": "c"}])
    path = DocumentPath("n", "c", "d")
    result = SearchResult(path, "text", 0.5, TextCursor(0, 1), TextCursor(0, 4))
    assert search_results_to_json([[result], []]) == [
        [
            {
                "document_path": {"namespace": "n", "collection": "c", "name": "d"},
                "content": "text",
                "score": 0.5,
                "start": {"item": 0, "position": 1},
                "end": {"item": 0, "position": 4},
            }
        ],
        [],
    ]
    document = Document(path, [TextContent("t"), ImageContent()], {"k": [1]})
    assert documents_to_json([document]) == [
        {
            "path": {"namespace": "n", "collection": "c", "name": "d"},
            "contents": [{"modality": "text", "text": "t"}, {"modality": "image"}],
            "metadata": {"k": [1]},
        }
    ]
