"""`pharia:skill@0.5` with the `alpha` feature (`PHARIA_AI_FEATURE_SET=BETA`): served as 0.4, reports 0.5."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.engine import engine_with_skills
from tests.support.openai_server import OpenAIServer
from tests.support.skills import WIT, build_raw_skill, unstable_copy


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, compiled_cache: Path, openai: tuple[OpenAIServer, str]
) -> Iterator[httpx.Client]:
    v0_5 = build_raw_skill("wit_v0_4", unstable_copy(WIT / "skill@0.4", "0.5.0", "alpha"), "skill", "alpha")
    _, url = openai
    process = engine_with_skills(
        tmp_path_factory.mktemp("engine-alpha"),
        {"v05": v0_5},
        {
            "PHARIA_AI_FEATURE_SET": "beta",
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
        },
    ).start()
    try:
        with httpx.Client(base_url=process.url, timeout=180) as client:
            yield client
    finally:
        process.stop()


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
