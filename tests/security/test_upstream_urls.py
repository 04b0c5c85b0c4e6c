"""Names a skill chooses never shape an upstream URL (issue 13, item 2).

Model names (Aleph Alpha tokenizer route) and Document Index namespace, collection, index and document
names go through CSI over HTTP, the same drivers a skill's CSI calls use; each loopback upstream records the
raw request target it received, routed or not, so a resolved `..` or a cut-off `?`/`#` would show.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.aleph_alpha_server import AlephAlphaServer
from tests.support.document_index_server import DocumentIndexServer
from tests.support.engine import EngineProcess
from tests.support.servers import RawPaths, ThreadedServer

TOKEN = "url-test-token"


class Upstreams:
    def __init__(self) -> None:
        self.inference = RawPaths(AlephAlphaServer().app)
        self.index = RawPaths(DocumentIndexServer().app)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstreams, str, str]]:
    ups = Upstreams()
    inference = ThreadedServer(ups.inference).start()
    index = ThreadedServer(ups.index).start()
    try:
        yield ups, inference.url, index.url
    finally:
        inference.stop()
        index.stop()


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, upstreams: tuple[Upstreams, str, str]
) -> Iterator[httpx.Client]:
    _, inference, index = upstreams
    workdir = tmp_path_factory.mktemp("engine-upstream-urls")
    env = {"INFERENCE_URL": inference, "DOCUMENT_INDEX_URL": index}
    with (
        EngineProcess(workdir, env) as engine,
        httpx.Client(base_url=engine.url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        yield client


def csi(client: httpx.Client, function: str, body: Any) -> httpx.Response:
    return client.post(f"/csi/v1/{function}", json=body)


def chunk_request(model: str) -> dict[str, Any]:
    return {"text": "123456", "params": {"model": model, "max_tokens": 3, "overlap": 0}}


@pytest.mark.parametrize(
    ("model", "target"),
    [
        ("../other", "/models/..%2Fother/tokenizer"),
        ("../../complete", "/models/..%2F..%2Fcomplete/tokenizer"),
        ("m?x=1", "/models/m%3Fx%3D1/tokenizer"),
        ("m#frag", "/models/m%23frag/tokenizer"),
        ("a%2Fb", "/models/a%252Fb/tokenizer"),
        ("a b/ä", "/models/a%20b%2F%C3%A4/tokenizer"),
    ],
)
def test_tokenizer_model_is_one_encoded_segment(
    client: httpx.Client, upstreams: tuple[Upstreams, str, str], model: str, target: str
) -> None:
    ups = upstreams[0]
    ups.inference.take()
    response = csi(client, "chunk", [chunk_request(model)])
    assert response.status_code == 200, response.text
    assert response.json() == [["123", "456"]]  # no tokenizer: counted in characters
    assert ups.inference.take() == [target]


@pytest.mark.parametrize("model", ["..", "."])
def test_dot_segment_models_send_nothing(
    client: httpx.Client, upstreams: tuple[Upstreams, str, str], model: str
) -> None:
    ups = upstreams[0]
    ups.inference.take()
    response = csi(client, "chunk", [chunk_request(model)])
    assert response.status_code == 200, response.text
    assert response.json() == [["123", "456"]]
    assert ups.inference.take() == []


HOSTILE_PATH = {"namespace": "../../admin", "collection": "c?x=1", "name": "d#e%2F../f"}
HOSTILE_TARGET = "/collections/..%2F..%2Fadmin/c%3Fx%3D1/docs/d%23e%252F..%2Ff"


@pytest.mark.parametrize("function", ["documents", "document_metadata"])
def test_document_path_segments_are_encoded(
    client: httpx.Client, upstreams: tuple[Upstreams, str, str], function: str
) -> None:
    ups, _, index = upstreams
    ups.index.take()
    response = csi(client, function, [HOSTILE_PATH])
    assert response.status_code == 500
    assert response.text == (
        f"Something went wrong: HTTP status client error (404 Not Found) for url ({index}{HOSTILE_TARGET})"
    )
    assert ups.index.take() == [HOSTILE_TARGET]


def test_search_index_path_segments_are_encoded(
    client: httpx.Client, upstreams: tuple[Upstreams, str, str]
) -> None:
    ups = upstreams[0]
    ups.index.take()
    request = {
        "query": "q",
        "index_path": {"namespace": "ns/../x", "collection": "%2F%2E%2E", "index": "i?j#k"},
        "max_results": 1,
    }
    response = csi(client, "search", [request])
    assert response.status_code == 500
    assert ups.index.take() == ["/collections/ns%2F..%2Fx/%252F%252E%252E/indexes/i%3Fj%23k/search"]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ({"namespace": "..", "collection": "c", "name": "d"}, "Invalid namespace '..'"),
        ({"namespace": "n", "collection": ".", "name": "d"}, "Invalid collection '.'"),
        ({"namespace": "n", "collection": "c", "name": ".."}, "Invalid document name '..'"),
        ({"namespace": "n", "collection": "", "name": "d"}, "Invalid collection ''"),
    ],
)
def test_dot_segment_document_names_are_refused(
    client: httpx.Client, upstreams: tuple[Upstreams, str, str], path: dict[str, str], text: str
) -> None:
    ups = upstreams[0]
    ups.index.take()
    response = csi(client, "documents", [path])
    assert response.status_code == 500
    assert response.text == f"Something went wrong: {text}: it cannot be used in a URL path."
    assert ups.index.take() == []


def test_dot_segment_index_is_refused(client: httpx.Client, upstreams: tuple[Upstreams, str, str]) -> None:
    ups = upstreams[0]
    ups.index.take()
    request = {
        "query": "q",
        "index_path": {"namespace": "n", "collection": "c", "index": ".."},
        "max_results": 1,
    }
    response = csi(client, "search", [request])
    assert response.status_code == 500
    assert response.text == "Something went wrong: Invalid index '..': it cannot be used in a URL path."
    assert ups.index.take() == []
