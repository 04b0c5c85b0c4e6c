"""Search, documents and metadata against a loopback Document Index (`DOCUMENT_INDEX_URL`), from a real skill.

The server asserts what PhariaEngine sends (engine-spec §4.5): paths, bodies with the appended text-only
filter, URL-encoded document names, the caller's bearer token, and retries on transient failures (§3.4).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.document_index_server import DocumentIndexServer
from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.servers import ThreadedServer

USER_TOKEN = "user-token-123"
RUNTIME_ERROR = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)
TEXT_ONLY = {"with": [{"modality": "text"}]}


@pytest.fixture(scope="module")
def index() -> Iterator[tuple[DocumentIndexServer, str]]:
    backend = DocumentIndexServer()
    server = ThreadedServer(backend.app).start()
    try:
        yield backend, server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    docs_rag_wasm: Path,
    compiled_cache: Path,
    index: tuple[DocumentIndexServer, str],
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("engine-documents-remote")
    process = engine_with_skills(
        workdir,
        {"docs-rag": docs_rag_wasm},
        {"DOCUMENT_INDEX_URL": index[1], "WASMTIME_CACHE_DIR": str(compiled_cache)},
    )
    with process:
        yield process


@pytest.fixture
def backend(index: tuple[DocumentIndexServer, str]) -> Iterator[DocumentIndexServer]:
    server = index[0]
    server.take()
    server.fail_next.clear()
    yield server
    server.fail_next.clear()


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        yield client


def run(client: httpx.Client, body: Any, token: str | None = USER_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/v1/skills/my-team/docs-rag/run", json=body, headers=headers)


def result(path: list[str], text: str, score: float, start: tuple[int, int], end: tuple[int, int]) -> Any:
    return {
        "document_path": dict(zip(("namespace", "collection", "name"), path, strict=True)),
        "section": [{"modality": "text", "text": text}],
        "score": score,
        "start": {"modality": "text", "item": start[0], "position": start[1]},
        "end": {"modality": "text", "item": end[0], "position": end[1]},
    }


def test_search_sends_the_reference_body_and_maps_results(
    client: httpx.Client, backend: DocumentIndexServer
) -> None:
    backend.results["heidelberg"] = [
        result(["Kernel", "test", "heidelberg"], "Heidelberg is a city.", 0.87, (0, 0), (0, 20)),
        result(["Kernel", "test", "castle"], "The castle.", 0.5, (1, 4), (1, 14)),
    ]
    filters = [
        {
            "with": [
                {"metadata": {"field": "year", "greater_than": 1000.0}},
                {"metadata": {"field": "year", "greater_than_or_equal_to": 1.5}},
                {"metadata": {"field": "year", "less_than": 3000.0}},
                {"metadata": {"field": "year", "less_than_or_equal_to": 2999.0}},
            ]
        },
        {
            "with_one_of": [
                {"metadata": {"field": "created", "after": "2020-01-01T00:00:00+00:00"}},
                {"metadata": {"field": "created", "at_or_after": "2020-01-01T00:00:00+00:00"}},
                {"metadata": {"field": "created", "before": "2030-01-01T00:00:00+00:00"}},
                {"metadata": {"field": "created", "at_or_before": "2030-01-01T00:00:00+00:00"}},
            ]
        },
        {
            "without": [
                {"metadata": {"field": "tags[].name", "equal_to": "secret"}},
                {"metadata": {"field": "a.b", "equal_to": 7}},
                {"metadata": {"field": "flag", "equal_to": True}},
                {"metadata": {"field": "gone", "is_null": True}},
            ]
        },
    ]
    query = {
        "index": ["Kernel", "test", "asym-64"],
        "query": "heidelberg",
        "max_results": 5,
        "filters": filters,
    }
    response = run(client, {"mode": "search", "queries": [query]})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == [
        [
            {
                "path": ["Kernel", "test", "heidelberg"],
                "content": "Heidelberg is a city.",
                "score": 0.87,
                "start": [0, 0],
                "end": [0, 20],
            },
            {
                "path": ["Kernel", "test", "castle"],
                "content": "The castle.",
                "score": 0.5,
                "start": [1, 4],
                "end": [1, 14],
            },
        ]
    ]
    [sent] = backend.take()
    assert sent["raw_path"] == "/collections/Kernel/test/indexes/asym-64/search"
    assert sent["authorization"] == f"Bearer {USER_TOKEN}"
    assert sent["body"] == {
        "query": [{"modality": "text", "text": "heidelberg"}],
        "max_results": 5,
        "min_score": None,
        "filters": [*filters, TEXT_ONLY],
    }


def test_concurrent_searches_come_back_in_request_order(
    client: httpx.Client, backend: DocumentIndexServer
) -> None:
    for word in ("one", "two", "three"):
        backend.results[word] = [result(["ns", "c", word], word, 0.9, (0, 0), (0, 2))]
    queries = [
        {"index": ["ns", "c", "i"], "query": word, "min_score": 0.25} for word in ("one", "two", "three")
    ]
    response = run(client, {"mode": "search", "queries": queries})
    assert response.status_code == 200, response.text
    assert [batch[0]["content"] for batch in response.json()["result"]] == ["one", "two", "three"]
    sent = backend.take()
    assert sorted(r["body"]["query"][0]["text"] for r in sent) == ["one", "three", "two"]
    assert all(r["body"]["min_score"] == 0.25 and r["body"]["max_results"] == 3 for r in sent)


def test_documents_and_metadata_url_encode_the_name(
    client: httpx.Client, backend: DocumentIndexServer
) -> None:
    backend.documents[("Kernel", "test", "kernel/docs")] = {
        "contents": [
            {"modality": "text", "text": "First part."},
            {"modality": "image", "bytes": "AAAA"},
            {"modality": "text", "text": "Second part."},
        ],
        "metadata": [{"url": "https://example.com/kernel"}],
    }
    backend.documents[("Kernel", "test", "plain")] = {"contents": [{"modality": "text", "text": "x"}]}
    paths = [["Kernel", "test", "kernel/docs"], ["Kernel", "test", "plain"]]
    response = run(client, {"mode": "documents", "paths": paths})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == [
        {
            "path": ["Kernel", "test", "kernel/docs"],
            "contents": ["First part.", "<image>", "Second part."],
            "metadata": [{"url": "https://example.com/kernel"}],
        },
        {"path": ["Kernel", "test", "plain"], "contents": ["x"], "metadata": None},
    ]
    sent = backend.take()
    assert sorted(r["raw_path"] for r in sent) == [
        "/collections/Kernel/test/docs/kernel%2Fdocs",
        "/collections/Kernel/test/docs/plain",
    ]
    assert {r["authorization"] for r in sent} == {f"Bearer {USER_TOKEN}"}

    response = run(client, {"mode": "metadata", "paths": paths})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == [[{"url": "https://example.com/kernel"}], None]
    assert len(backend.take()) == 2


def test_a_missing_document_is_an_error(client: httpx.Client, index: tuple[DocumentIndexServer, str]) -> None:
    response = run(client, {"mode": "documents", "paths": [["Kernel", "test", "no such doc"]]})
    assert response.status_code == 503
    url = f"{index[1]}/collections/Kernel/test/docs/no%20such%20doc"
    assert response.text == f"{RUNTIME_ERROR}HTTP status client error (404 Not Found) for url ({url})"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"mode": "search", "queries": [{"index": ["a", "b", "c"], "query": "q"}]},
            "Searching in the Document Index requires a PhariaAI token. Please provide a valid token in the "
            "Authorization header.",
        ),
        (
            {"mode": "documents", "paths": [["a", "b", "c"]]},
            "Fetching a document from the Document Index requires a PhariaAI token. Please provide a valid "
            "token in the Authorization header.",
        ),
        (
            {"mode": "metadata", "paths": [["a", "b", "c"]]},
            "Fetching metadata from the Document Index requires a PhariaAI token. Please provide a valid "
            "token in the Authorization header.",
        ),
    ],
)
def test_calls_without_a_token_fail_with_the_reference_texts(
    client: httpx.Client, backend: DocumentIndexServer, body: Any, text: str
) -> None:
    response = run(client, body, token=None)
    assert response.status_code == 503
    assert response.text == RUNTIME_ERROR + text
    assert backend.take() == []


def test_transient_failures_are_retried(client: httpx.Client, backend: DocumentIndexServer) -> None:
    backend.results["retry"] = [result(["ns", "c", "d"], "after retries", 0.7, (0, 0), (0, 12))]
    backend.fail_next[:] = [503, 429, 502]
    response = run(client, {"mode": "search", "queries": [{"index": ["ns", "c", "i"], "query": "retry"}]})
    assert response.status_code == 200, response.text
    assert response.json()["result"][0][0]["content"] == "after retries"
    assert len(backend.take()) == 4


def test_retries_are_bounded(
    client: httpx.Client, backend: DocumentIndexServer, index: tuple[DocumentIndexServer, str]
) -> None:
    backend.fail_next[:] = [500, 500, 500, 500, 500]
    response = run(client, {"mode": "metadata", "paths": [["ns", "c", "d"]]})
    assert response.status_code == 503
    assert response.text == (
        f"{RUNTIME_ERROR}HTTP status server error (500 Internal Server Error) for url "
        f"({index[1]}/collections/ns/c/docs/d)"
    )
    assert len(backend.take()) == 4  # the first attempt and 3 retries
    assert backend.fail_next == [500]


def test_client_errors_are_not_retried(client: httpx.Client, backend: DocumentIndexServer) -> None:
    backend.fail_next[:] = [400]
    response = run(client, {"mode": "search", "queries": [{"index": ["ns", "c", "i"], "query": "x"}]})
    assert response.status_code == 503
    assert "HTTP status client error (400 Bad Request)" in response.text
    assert len(backend.take()) == 1


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("two-items", "Document Index result has more than one item in a section."),
        ("image", "Invalid search result"),
    ],
)
def test_invalid_search_results(
    client: httpx.Client, backend: DocumentIndexServer, query: str, text: str
) -> None:
    response = run(client, {"mode": "search", "queries": [{"index": ["ns", "c", "i"], "query": query}]})
    assert response.status_code == 503
    assert response.text == RUNTIME_ERROR + text
