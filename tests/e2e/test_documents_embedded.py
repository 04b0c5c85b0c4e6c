"""The embedded document index for real: documents added over HTTP, searched from a skill, kept across an
engine restart; the management API's authentication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.openai_server import OpenAIServer

ADMIN = "admin-secret"
RUNTIME_ERROR = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)
BASE = "/v1/documents/handbook/policies"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
VACATION = (
    "Every employee gets thirty days of paid vacation per year. Vacation must be requested two weeks in "
    "advance through the HR portal. Unused vacation days expire at the end of March of the following year."
)


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    docs_rag_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("engine-documents-embedded")
    process = engine_with_skills(
        workdir,
        {"docs-rag": docs_rag_wasm},
        {
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
            "DOCUMENTS__ADMIN_TOKEN": ADMIN,
            "OPENAI_INFERENCE__URL": openai[1],
            "OPENAI_INFERENCE__TOKEN": "backend-token",
        },
    )
    with process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        assert (
            client.put(f"{BASE}/indexes/lexical", json={"chunk_size": 120}, headers=AUTH).status_code == 204
        )
        documents: list[tuple[str, Any]] = [
            ("vacation", {"contents": [{"modality": "text", "text": VACATION}], "metadata": {"year": 2024}}),
            (
                "travel/expenses",
                {
                    "schema_version": "V1",
                    "contents": [
                        {"modality": "text", "text": "Travel expenses are refunded within thirty days."},
                        {"modality": "image", "bytes": "iVBORw0KGgo="},
                        {"modality": "text", "text": "Trains are preferred over flights."},
                    ],
                    "metadata": {"year": 2021, "owner": {"team": "finance"}},
                },
            ),
            (
                "no-metadata",
                {"contents": [{"modality": "text", "text": "Remote work is allowed on Fridays."}]},
            ),
        ]
        for name, body in documents:
            response = client.put(f"{BASE}/{name}", json=body, headers=AUTH)
            assert response.status_code == 204, response.text
        yield client


def run(client: httpx.Client, body: Any) -> httpx.Response:
    return client.post("/v1/skills/my-team/docs-rag/run", json=body)


def search(client: httpx.Client, query: str, **options: Any) -> Any:
    request = {"index": ["handbook", "policies", "lexical"], "query": query, **options}
    response = run(client, {"mode": "search", "queries": [request]})
    assert response.status_code == 200, response.text
    return response.json()["result"][0]


def test_search_returns_bounded_passages_with_cursors(client: httpx.Client) -> None:
    results = search(client, "unused vacation days", max_results=2)
    best = results[0]
    assert best["path"] == ["handbook", "policies", "vacation"]
    assert best["score"] == 1.0
    assert "Unused vacation days expire" in best["content"]
    assert len(best["content"]) <= 120
    (item, start), (end_item, end) = best["start"], best["end"]
    assert item == end_item == 0
    assert VACATION[start : end + 1] == best["content"]


def test_the_second_text_item_has_its_own_cursor(client: httpx.Client) -> None:
    [result] = search(client, "trains flights", max_results=1)
    assert result["path"] == ["handbook", "policies", "travel/expenses"]
    assert result["start"] == [2, 0]
    assert result["end"] == [2, len("Trains are preferred over flights.") - 1]


def test_min_score_and_filters(client: httpx.Client) -> None:
    names = {r["path"][2] for r in search(client, "thirty days fridays", max_results=10)}
    assert names == {"vacation", "travel/expenses", "no-metadata"}
    strict = search(client, "thirty days fridays", max_results=10, min_score=0.5)
    assert all(r["score"] >= 0.5 for r in strict) and len(strict) < 4
    old = [{"with": [{"metadata": {"field": "year", "less_than": 2023}}]}]
    assert {r["path"][2] for r in search(client, "thirty days", max_results=10, filters=old)} == {
        "travel/expenses"
    }
    finance = [{"with_one_of": [{"metadata": {"field": "owner.team", "equal_to": "finance"}}]}]
    assert {r["path"][2] for r in search(client, "thirty", max_results=10, filters=finance)} == {
        "travel/expenses"
    }
    no_year = [{"with": [{"metadata": {"field": "year", "is_null": True}}]}]
    assert {r["path"][2] for r in search(client, "fridays days", max_results=10, filters=no_year)} == {
        "no-metadata"
    }


def test_rag_answer_uses_the_found_passages(client: httpx.Client, openai: tuple[OpenAIServer, str]) -> None:
    query = {
        "index": ["handbook", "policies", "lexical"],
        "query": "refunded travel expenses",
        "max_results": 1,
    }
    response = run(client, {"mode": "rag", "queries": [query], "model": "test-model"})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["passages"] == ["Travel expenses are refunded within thirty days."]
    assert result["documents"] == [
        "Travel expenses are refunded within thirty days.\n\nTrains are preferred over flights."
    ]
    assert result["metadata"] == [{"year": 2021, "owner": {"team": "finance"}}]
    assert "Context: Travel expenses are refunded within thirty days." in result["answer"]


def test_documents_and_metadata(client: httpx.Client) -> None:
    paths = [["handbook", "policies", "travel/expenses"], ["handbook", "policies", "no-metadata"]]
    response = run(client, {"mode": "documents", "paths": paths})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == [
        {
            "path": paths[0],
            "contents": [
                "Travel expenses are refunded within thirty days.",
                "<image>",
                "Trains are preferred over flights.",
            ],
            "metadata": {"year": 2021, "owner": {"team": "finance"}},
        },
        {"path": paths[1], "contents": ["Remote work is allowed on Fridays."], "metadata": None},
    ]
    response = run(client, {"mode": "metadata", "paths": paths})
    assert response.json()["result"] == [{"year": 2021, "owner": {"team": "finance"}}, None]


def test_missing_document_and_unknown_index_end_the_invocation(client: httpx.Client) -> None:
    response = run(client, {"mode": "metadata", "paths": [["handbook", "policies", "nope"]]})
    assert response.status_code == 503
    assert response.text == (
        RUNTIME_ERROR
        + "Document `nope` not found in collection `handbook/policies` of the embedded document index."
    )
    request = {"index": ["handbook", "policies", "semantic"], "query": "x"}
    response = run(client, {"mode": "search", "queries": [request]})
    assert response.status_code == 503
    assert "Index `semantic` does not exist in collection `handbook/policies`" in response.text


def test_management_reads(client: httpx.Client) -> None:
    response = client.get(f"{BASE}/travel/expenses", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "path": {"namespace": "handbook", "collection": "policies", "name": "travel/expenses"},
        "contents": [
            {"modality": "text", "text": "Travel expenses are refunded within thirty days."},
            {"modality": "image"},
            {"modality": "text", "text": "Trains are preferred over flights."},
        ],
        "metadata": {"year": 2021, "owner": {"team": "finance"}},
    }
    assert client.get(BASE, headers=AUTH).json() == ["no-metadata", "travel/expenses", "vacation"]
    assert client.get(f"{BASE}/indexes/lexical", headers=AUTH).json() == {
        "chunk_size": 120,
        "chunk_overlap": 0,
    }
    assert client.get(f"{BASE}/missing", headers=AUTH).status_code == 404
    assert client.get(f"{BASE}/indexes/missing", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"contents": []}, "`contents` must be a non-empty list"),
        ({"contents": [{"modality": "text"}]}, "`contents[0]` must be"),
        ({"contents": [{"modality": "text", "text": "x"}], "schema_version": "V2"}, "schema_version"),
        ([1, 2], "The body must be a JSON object"),
    ],
)
def test_bad_document_bodies(client: httpx.Client, body: Any, fragment: str) -> None:
    response = client.put(f"{BASE}/bad", json=body, headers=AUTH)
    assert response.status_code == 400
    assert fragment in response.text


def test_bad_index_and_json_bodies(client: httpx.Client) -> None:
    response = client.put(f"{BASE}/indexes/x", json={"chunk_size": 10, "chunk_overlap": 10}, headers=AUTH)
    assert response.status_code == 400
    assert "`chunk_overlap` must be at least 0 and smaller than `chunk_size`" in response.text
    response = client.put(f"{BASE}/x", content=b"{nope", headers=AUTH)
    assert response.status_code == 400
    assert response.text.startswith("Failed to parse the request body as JSON")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_management_requires_the_admin_token(client: httpx.Client, method: str) -> None:
    body = {"contents": [{"modality": "text", "text": "x"}]}
    for url in (f"{BASE}/vacation", f"{BASE}/indexes/lexical"):
        missing = client.request(method, url, json=body)
        assert missing.status_code == 401
        assert missing.text == "Bearer token expected"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, url, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        assert wrong.text == "Bearer token invalid"
    assert client.get(f"{BASE}/vacation", headers=AUTH).status_code == 200


def test_delete_then_restart_keeps_the_data(client: httpx.Client, engine: EngineProcess) -> None:
    response = client.put(
        f"{BASE}/temporary", json={"contents": [{"modality": "text", "text": "Zeppelins."}]}, headers=AUTH
    )
    assert response.status_code == 204
    assert [r["path"][2] for r in search(client, "zeppelins")] == ["temporary"]
    assert client.delete(f"{BASE}/temporary", headers=AUTH).status_code == 204
    assert client.delete(f"{BASE}/temporary", headers=AUTH).status_code == 404
    assert search(client, "zeppelins") == []
    before = search(client, "unused vacation days", max_results=3)

    engine.stop()
    engine.start()

    assert search(client, "unused vacation days", max_results=3) == before
    assert search(client, "zeppelins") == []


def test_without_an_admin_token_the_management_api_is_forbidden(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("engine-documents-no-admin")
    engine = EngineProcess(workdir, {"DOCUMENTS__DIRECTORY": str(workdir / "documents")}).start()
    try:
        response = httpx.put(
            f"{engine.url}{BASE}/x", json={"contents": []}, headers={"Authorization": "Bearer anything"}
        )
        assert response.status_code == 403
        assert response.text.startswith("The document management API is disabled because no admin token")
        assert httpx.get(f"{engine.url}{BASE}/indexes/lexical").status_code == 403
        assert not (workdir / "documents").exists()  # nothing touched the disk
    finally:
        engine.stop()
