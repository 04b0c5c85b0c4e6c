"""`search`, `documents` and `document_metadata` over CSI over HTTP (engine-spec §2.9.1): against a
loopback Document Index (shapes, forwarded token, errors) and, through the SDK's `DevCsi`, against the
embedded index."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.document_index_server import DocumentIndexServer
from tests.support.engine import EngineProcess
from tests.support.servers import ThreadedServer
from tests.support.skills import tool_env

TOKEN = "csi-user-token"
ADMIN = "admin-token"


@pytest.fixture(scope="module")
def index() -> Iterator[tuple[DocumentIndexServer, str]]:
    backend = DocumentIndexServer()
    server = ThreadedServer(backend.app).start()
    try:
        yield backend, server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def remote_engine(
    tmp_path_factory: pytest.TempPathFactory, index: tuple[DocumentIndexServer, str]
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("engine-csi-documents-remote")
    with EngineProcess(workdir, {"DOCUMENT_INDEX_URL": index[1], "DOCUMENTS__ADMIN_TOKEN": ADMIN}) as engine:
        yield engine


@pytest.fixture(scope="module")
def remote(remote_engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=remote_engine.url, timeout=60) as client:
        yield client


def csi(
    client: httpx.Client, function: str, body: Any, version: str = "v1", token: str | None = TOKEN
) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(f"/csi/{version}/{function}", json=body, headers=headers)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_search_over_http(remote: httpx.Client, index: tuple[DocumentIndexServer, str], version: str) -> None:
    backend = index[0]
    backend.take()
    cursor = {"modality": "text", "item": 0, "position": 3}
    backend.results["castle"] = [
        {
            "document_path": {"namespace": "Kernel", "collection": "test", "name": "heidelberg"},
            "section": [{"modality": "text", "text": "The castle."}],
            "score": 0.75,
            "start": cursor,
            "end": {**cursor, "position": 13},
        }
    ]
    filters = [
        {"with": [{"metadata": {"field": "year", "greater_than_or_equal_to": 2000.0}}]},
        {"without": [{"metadata": {"field": "draft", "equal_to": True}}]},
    ]
    request = {
        "query": "castle",
        "index_path": {"namespace": "Kernel", "collection": "test", "index": "asym-64"},
        "max_results": 2,
        "min_score": 0.1,
        "filters": filters,
    }
    response = csi(remote, "search", [request], version)
    assert response.status_code == 200, response.text
    assert response.json() == [
        [
            {
                "document_path": {"namespace": "Kernel", "collection": "test", "name": "heidelberg"},
                "content": "The castle.",
                "score": 0.75,
                "start": {"item": 0, "position": 3},
                "end": {"item": 0, "position": 13},
            }
        ]
    ]
    [sent] = backend.take()
    assert sent["raw_path"] == "/collections/Kernel/test/indexes/asym-64/search"
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert sent["body"]["filters"] == [*filters, {"with": [{"modality": "text"}]}]
    assert sent["body"]["min_score"] == 0.1


def test_documents_and_metadata_over_http(
    remote: httpx.Client, index: tuple[DocumentIndexServer, str]
) -> None:
    backend = index[0]
    backend.take()
    backend.documents[("Kernel", "test", "kernel/docs")] = {
        "contents": [{"modality": "text", "text": "Docs."}, {"modality": "image", "bytes": "AA=="}],
        "metadata": {"url": "https://example.com"},
    }
    path = {"namespace": "Kernel", "collection": "test", "name": "kernel/docs"}
    response = csi(remote, "documents", [path])
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            "path": path,
            "contents": [{"modality": "text", "text": "Docs."}, {"modality": "image"}],
            "metadata": {"url": "https://example.com"},
        }
    ]
    response = csi(remote, "document_metadata", [path, path])
    assert response.status_code == 200, response.text
    assert response.json() == [{"url": "https://example.com"}, {"url": "https://example.com"}]
    sent = backend.take()
    assert {r["raw_path"] for r in sent} == {"/collections/Kernel/test/docs/kernel%2Fdocs"}
    assert {r["authorization"] for r in sent} == {f"Bearer {TOKEN}"}


def test_errors_over_http(remote: httpx.Client, index: tuple[DocumentIndexServer, str]) -> None:
    path = {"namespace": "Kernel", "collection": "test", "name": "missing"}
    response = csi(remote, "documents", [path])
    assert response.status_code == 500
    assert response.text == (
        "Something went wrong: HTTP status client error (404 Not Found) for url "
        f"({index[1]}/collections/Kernel/test/docs/missing)"
    )
    response = csi(remote, "document_metadata", [path], token=None)
    assert response.status_code == 500
    assert response.text == (
        "Something went wrong: Fetching metadata from the Document Index requires a PhariaAI token. Please "
        "provide a valid token in the Authorization header."
    )
    response = csi(remote, "search", [{"query": "x"}])
    assert response.status_code == 422


def test_with_a_document_index_the_embedded_management_api_answers_409(remote: httpx.Client) -> None:
    response = remote.get("/v1/documents/a/b/c", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 409
    assert "configured with DOCUMENT_INDEX_URL" in response.text
    assert remote.get("/v1/documents/a/b/c", headers={"Authorization": "Bearer wrong"}).status_code == 403


DEVCSI_SCRIPT = """
import json
from pharia_skill import DocumentPath, IndexPath, LessThan, MetadataFilter, With
from pharia_skill.testing import DevCsi

csi = DevCsi()
index = IndexPath("handbook", "policies", "lexical")
found = csi.search(index, "vacation days", max_results=3)
filtered = csi.search(index, "days", max_results=3, filters=[With([MetadataFilter("year", LessThan(2023))])])
paths = [DocumentPath("handbook", "policies", "vacation"), DocumentPath("handbook", "policies", "travel")]
documents = csi.documents(paths)
print(json.dumps({
    "found": [[r.document_path.name, r.content, r.score, r.start.position, r.end.position] for r in found],
    "filtered": [r.document_path.name for r in filtered],
    "documents": [d.text for d in documents],
    "metadata": csi.documents_metadata(paths),
}))
"""


def test_devcsi_search_and_documents_against_the_embedded_index(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    workdir = tmp_path_factory.mktemp("engine-csi-documents-embedded")
    engine = EngineProcess(
        workdir, {"DOCUMENTS__DIRECTORY": str(workdir / "documents"), "DOCUMENTS__ADMIN_TOKEN": ADMIN}
    ).start()
    try:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        base = f"{engine.url}/v1/documents/handbook/policies"
        assert httpx.put(f"{base}/indexes/lexical", json={}, headers=auth).status_code == 204
        vacation = "Every employee gets thirty vacation days."
        for name, text, year in (
            ("vacation", vacation, 2024),
            ("travel", "Travel days are work days.", 2021),
        ):
            body = {"contents": [{"modality": "text", "text": text}], "metadata": {"year": year}}
            assert httpx.put(f"{base}/{name}", json=body, headers=auth).status_code == 204
        env = {
            **os.environ,
            "PHARIA_KERNEL_ADDRESS": engine.url,
            "PHARIA_AI_TOKEN": "dev-token",
            "OTEL_SDK_DISABLED": "true",
        }
        done = subprocess.run(
            [str(tool_env() / "bin" / "python"), "-c", DEVCSI_SCRIPT],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        engine.stop()
    assert result["found"][0] == ["vacation", vacation, 1.0, 0, len(vacation) - 1]
    assert [name for name, *_ in result["found"]] == ["vacation", "travel"]
    assert result["filtered"] == ["travel"]
    assert result["documents"] == [vacation, "Travel days are work days."]
    assert result["metadata"] == [{"year": 2024}, {"year": 2021}]
