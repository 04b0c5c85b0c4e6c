"""`pharia:skill@0.5` with the `alpha` feature (`PHARIA_AI_FEATURE_SET=BETA`): served as 0.4, reports 0.5,
for both worlds (`skill` and `message-stream-skill`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_run import USER_CODE_PREFIX
from tests.e2e.test_stream import parse_sse
from tests.e2e.test_wit_versions import csi_requests
from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.openai_server import OpenAIServer
from tests.support.skills import WIT, build_raw_skill, unstable_copy


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, compiled_cache: Path, openai: tuple[OpenAIServer, str]
) -> Iterator[EngineProcess]:
    wit = unstable_copy(WIT / "skill@0.4", "0.5.0", "alpha")
    v0_5 = build_raw_skill("wit_v0_4", wit, "skill", "alpha")
    v0_5_stream = build_raw_skill("wit_v0_4_stream", wit, "message-stream-skill", "alpha")
    _, url = openai
    with engine_with_skills(
        tmp_path_factory.mktemp("engine-alpha"),
        {"v05": v0_5, "v05-stream": v0_5_stream},
        {
            "PHARIA_AI_FEATURE_SET": "beta",
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
        },
    ) as process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=180) as client:
        yield client


def test_v0_5_runs_as_0_4(client: httpx.Client) -> None:
    body = {"mode": "chat", "model": "thinker", "text": "q"}
    response = client.post("/v1/skills/my-team/v05/run", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["reasoning_content"] == "pondering"


def test_v0_5_metadata_reports_0_5(client: httpx.Client) -> None:
    response = client.get("/v1/skills/my-team/v05/metadata")
    assert response.status_code == 200
    assert response.json()["version"] == "0.5"
    assert response.json()["description"] == "A 0.4 test skill"


def test_v0_5_message_stream(client: httpx.Client) -> None:
    response = client.post("/v1/skills/my-team/v05-stream/message-stream", json={"mode": "reasoning"})
    assert response.status_code == 200
    assert response.text == (
        'event: message\ndata: {"type":"begin"}\n\n'
        'event: reasoning\ndata: {"type":"reasoning","text":"Let me think."}\n\n'
        'event: message\ndata: {"type":"append","text":"Answer"}\n\n'
        'event: message\ndata: {"type":"end","payload":{"ok":true}}\n\n'
    )
    body = {"mode": "chat_stream", "model": "thinker", "text": "q"}
    events = parse_sse(client.post("/v1/skills/my-team/v05-stream/message-stream", json=body).content)
    assert [name for name, _ in events] == [
        "message",
        "reasoning",
        "reasoning",
        "message",
        "message",
        "message",
    ]
    assert events[-1] == ("message", {"type": "end", "payload": {"finish": "stop"}})


def test_v0_5_stream_metadata_and_errors(client: httpx.Client) -> None:
    metadata = client.get("/v1/skills/my-team/v05-stream/metadata")
    assert metadata.status_code == 200
    assert metadata.json() == {
        "description": None,
        "version": None,  # like every Wasm message-stream skill (no metadata export)
        "skill_type": "message_stream",
        "input_schema": None,
        "output_schema": None,
    }
    response = client.post("/v1/skills/my-team/v05-stream/run", json={})
    assert response.status_code == 400
    assert "Please invoke it via the /message-stream endpoint." in response.text
    events = parse_sse(
        client.post("/v1/skills/my-team/v05-stream/message-stream", json={"mode": "internal"}).content
    )
    assert events == [("error", {"message": USER_CODE_PREFIX + "the 0.4 stream failed"})]


def test_v0_5_chat_and_chat_stream_are_counted(engine: EngineProcess, client: httpx.Client) -> None:
    chats, streams = csi_requests(engine, "chat"), csi_requests(engine, "chat_stream")
    response = client.post("/v1/skills/my-team/v05/run", json={"mode": "chat", "text": "q"})
    assert response.status_code == 200, response.text
    body = {"mode": "chat_stream", "model": "thinker", "text": "q"}
    response = client.post("/v1/skills/my-team/v05-stream/message-stream", json=body)
    assert response.status_code == 200
    assert parse_sse(response.content)[-1] == ("message", {"type": "end", "payload": {"finish": "stop"}})
    assert (csi_requests(engine, "chat") - chats, csi_requests(engine, "chat_stream") - streams) == (1, 1)
