"""Backends that are down: the Document Index at a closed port. Each call fails after bounded retries
with a 503 naming the connection failure, and the engine keeps serving (IAM down: tests/security/)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.support.engine import WarmUp, engine_with_skills, running
from tests.support.servers import free_port


def test_document_index_down_is_a_503_after_bounded_retries(
    tmp_path: Path, docs_rag_wasm: Path, compiled_cache: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    process = engine_with_skills(
        tmp_path,
        {"docs-rag": docs_rag_wasm},
        {"DOCUMENT_INDEX_URL": closed, "WASMTIME_CACHE_DIR": str(compiled_cache)},
    )
    with (
        running(process, [WarmUp.metadata("my-team", "docs-rag")]),  # compiles: the timed call only runs
        httpx.Client(base_url=process.url, timeout=120) as client,
    ):
        body = {"mode": "search", "queries": [{"index": ["ns", "c", "i"], "query": "anything"}]}
        headers = {"authorization": "Bearer user-token"}
        started = time.monotonic()
        response = client.post("/v1/skills/my-team/docs-rag/run", json=body, headers=headers)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert "Original error:\n\n" in response.text
        assert "onnect" in response.text, response.text  # ConnectError / connection refused
        assert elapsed < 15
        assert client.get("/health").text == "ok"
