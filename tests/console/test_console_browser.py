"""The Skill Console in a real browser (Debian's Chromium via Playwright) against the real engine serving
SDK-built skills: catalogue, a nested-schema form that runs, a message stream growing in the page, an
execution's trace with its CSI call, and `/api-docs` rendering without internet access."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.browser import Outside
from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.openai_server import OpenAIServer
from tests.support.skills import build_skill

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    streamer_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    _, url = openai
    process = engine_with_skills(
        tmp_path_factory.mktemp("console"),
        {"console-form": build_skill("console_form"), "streamer": streamer_wasm},
        {
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "SKILL_TIMEOUT": "120s",
        },
    ).start()
    try:
        # Loaded once before the browser looks (compiling is slow on a busy machine).
        with httpx.Client(base_url=process.url, timeout=600) as client:
            for name in ("console-form", "streamer"):
                assert client.get(f"/v1/skills/my-team/{name}/metadata").status_code == 200
        yield process
    finally:
        process.stop()


def test_the_catalogue_lists_the_skills_with_description_schema_and_search(
    engine: EngineProcess, page: Any
) -> None:
    page.goto(f"{engine.url}/ui")
    form = page.locator('article[data-skill="my-team/console-form"]')
    stream = page.locator('article[data-skill="my-team/streamer"]')
    assert "Writes a one-line summary of a letter" in form.locator(".description").inner_text(timeout=60_000)
    page.wait_for_function(
        "document.querySelector('article[data-skill=\"my-team/console-form\"] .schemas') "
        "&& document.querySelector('article[data-skill=\"my-team/console-form\"] .schemas').innerText"
        ".includes('recipient')"
    )
    assert "function" in form.locator(".kind").inner_text()
    assert "message stream" in stream.locator(".kind").inner_text(timeout=60_000)
    assert form.locator(".state").inner_text() == "loaded"
    page.get_by_label("Search skills").fill("letter")
    stream.wait_for(state="hidden")
    assert form.is_visible()
    assert page.locator('article[data-skill="test-beta/hello"]').is_hidden()


def test_the_playground_form_of_a_nested_schema_fills_and_runs(engine: EngineProcess, page: Any) -> None:
    page.goto(f"{engine.url}/ui#/playground/my-team/console-form")
    page.get_by_label("Recipient").fill("Ada")
    page.get_by_label("Tone").select_option(label="formal")
    page.get_by_label("Urgent").check()
    page.get_by_label("Copies").fill("3")
    page.get_by_role("button", name="Add item").click()
    page.get_by_label("Tags item").fill("blue")
    page.get_by_label("City").fill("Berlin")
    assert page.get_by_label("Zip Code").input_value() == "10115"  # the default
    assert f"{engine.url}/v1/skills/my-team/console-form/run" in page.locator("#curl").inner_text()
    page.get_by_role("button", name="Run").click()
    result = json.loads(page.locator("#result").inner_text(timeout=120_000))
    line = "formal letter to Ada in Berlin 10115, 3 copies, urgent=True, tags=blue"
    assert result == {"line": line, "reply": f"echo: {line}"}


def test_a_message_stream_grows_in_the_page(engine: EngineProcess, page: Any) -> None:
    page.goto(f"{engine.url}/ui#/playground/my-team/streamer")
    page.get_by_label("Input (JSON)").fill('{"mode": "chat_stream", "model": "endless", "text": "go"}')
    page.get_by_role("button", name="Run").click()
    text = page.locator("#transcript .text")
    text.wait_for(timeout=120_000)
    page.wait_for_function("document.querySelector('#transcript .text').innerText.length > 0")
    first = text.inner_text()
    page.wait_for_function(
        f"document.querySelector('#transcript .text').innerText.length > {len(first) + 10}", timeout=60_000
    )
    later = text.inner_text()
    assert later.startswith(first.strip()) and later.split()[:3] == ["0", "1", "2"]
    assert page.get_by_role("button", name="Run").is_disabled()  # still streaming
    page.goto("about:blank")  # leaving the page ends the stream and the invocation


def test_an_execution_shows_its_trace_with_the_csi_call_and_log_lines(
    engine: EngineProcess, page: Any
) -> None:
    body = {"recipient": "Grace", "address": {"city": "Paris"}}
    response = httpx.post(f"{engine.url}/v1/skills/my-team/console-form/run", json=body, timeout=120)
    assert response.status_code == 200
    page.goto(f"{engine.url}/ui#/executions")
    page.locator("select#filter-status").select_option("ok")
    page.get_by_role("link", name="my-team/console-form").first.click()
    chat = page.locator('li[data-span="chat"]')
    summary = chat.locator("summary").inner_text()
    assert "test-model" in summary and "7 in / 3 out tokens" in summary
    assert page.locator('li[data-span="skill_execution"]').count() == 1
    assert page.locator('li[data-span="POST /v1/skills/{namespace}/{name}/run"]').count() == 1
    assert "writing to Grace in Paris" in page.locator("#logs").inner_text()
    chat.locator("summary").click()
    details = chat.locator("pre").inner_text()
    assert '"gen_ai.usage.output_tokens": 3' in details


def test_api_docs_render_without_internet(engine: EngineProcess, page: Any, outside: Outside) -> None:
    page.goto(f"{engine.url}/api-docs")
    assert "pharia-engine" in page.locator(".swagger-ui .info .title").inner_text(timeout=60_000)
    assert page.locator(".opblock-summary-path", has_text="/v1/skills/{namespace}/{name}/run").count() >= 1
    page.goto(f"{engine.url}/ui")
    page.locator('article[data-skill="test-beta/hello"]').wait_for()
    time.sleep(0.5)
    assert outside.urls == []
