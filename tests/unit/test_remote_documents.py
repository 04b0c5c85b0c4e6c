"""The Document Index driver's request shapes and its retries on connection errors (no server needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

from skill_engine.csi.calls import CsiContext
from skill_engine.csi.documents.filters import filter_from_json
from skill_engine.csi.documents.remote import RemoteDocuments, document_url, search_body
from skill_engine.csi.errors import CsiError
from skill_engine.csi.types import DocumentPath, IndexPath, SearchRequest
from tests.support.servers import free_port


def test_search_body_appends_the_text_only_filter() -> None:
    with_all = filter_from_json({"with": [{"metadata": {"field": "n", "less_than": 3}}]})
    request = SearchRequest(IndexPath("ns", "c", "i"), "q", 2, 0.5, [with_all])
    assert search_body(request) == {
        "query": [{"modality": "text", "text": "q"}],
        "max_results": 2,
        "min_score": 0.5,
        "filters": [
            {"with": [{"metadata": {"field": "n", "less_than": 3.0}}]},
            {"with": [{"modality": "text"}]},
        ],
    }


def test_only_the_document_name_is_url_encoded() -> None:
    path = DocumentPath("Kernel", "test", "kernel/docs ä?")
    assert (
        document_url("http://di", path) == "http://di/collections/Kernel/test/docs/kernel%2Fdocs%20%C3%A4%3F"
    )


def test_connection_errors_are_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    driver = RemoteDocuments(url, retries=3, backoff=0.05)

    async def call() -> None:
        try:
            await driver.document_metadata([DocumentPath("a", "b", "c")], CsiContext("ns", "skill", "token"))
        finally:
            await driver.aclose()

    started = time.monotonic()
    with pytest.raises(
        CsiError, match=r"^error sending request for url \(http://127\.0\.0\.1:\d+/collections/a/b/docs/c\)"
    ):
        asyncio.run(call())
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2  # three backoffs: the call was tried 4 times
