"""The Skill Console in a real browser (Debian's Chromium via Playwright) against the real engine serving
SDK-built skills: catalogue, a nested-schema form that runs, a message stream growing in the page, reasoning
and tool events shown apart from the text, the token form of an engine that requires a token, an
execution's trace with its CSI call, and `/api-docs` rendering without internet access."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import Outside
from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running
from tests.support.openai_server import OpenAIServer
from tests.support.skills import WIT, build_raw_skill, build_skill

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
        {
            "console-form": build_skill("console_form"),
            "streamer": streamer_wasm,
            "v04-stream": build_raw_skill("wit_v0_4_stream", WIT / "skill@0.4", "message-stream-skill"),
        },
        {
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "SKILL_TIMEOUT": "120s",
        },
    )
    # Loaded once before the browser looks (compiling is slow on a busy machine).
    warm = [WarmUp.metadata("my-team", name) for name in ("console-form", "streamer", "v04-stream")]
    with running(process, warm, timeout=180) as started:
        yield started


def test_the_catalogue_lists_the_skills_with_description_schema_and_search(
    engine: EngineProcess, page: Any
) -> None:
    page.goto(f"{engine.url}/ui")
    form = page.locator('article[data-skill="my-team/console-form"]')
    stream = page.locator('article[data-skill="my-team/streamer"]')
    expect(form.locator(".description")).to_have_text(
        "Writes a one-line summary of a letter and asks the model for a reply.", timeout=60_000
    )
    expect(form.locator(".schemas")).to_contain_text("recipient")
    expect(form.locator(".schemas")).to_contain_text("zip_code integer default 10115")
    expect(form.locator(".kind")).to_have_text("function")
    expect(stream.locator(".kind")).to_have_text("message stream", timeout=60_000)
    expect(form.locator(".state")).to_have_text("loaded")
    page.get_by_label("Search skills").fill("letter")
    expect(stream).to_be_hidden()
    expect(form).to_be_visible()
    expect(page.locator('article[data-skill="test-beta/hello"]')).to_be_hidden()


def test_the_playground_form_of_a_nested_schema_fills_and_runs(engine: EngineProcess, page: Any) -> None:
    page.goto(f"{engine.url}/ui#/playground/my-team/console-form")
    page.get_by_label("Recipient").fill("Ada")
    page.get_by_label("Tone").select_option(label="formal")
    page.get_by_label("Urgent").check()
    page.get_by_label("Copies").fill("3")
    page.get_by_role("button", name="Add item").click()
    page.get_by_label("Tags item").fill("blue")
    page.get_by_label("City").fill("Berlin")
    expect(page.get_by_label("Zip Code")).to_have_value("10115")  # the default
    expect(page.locator("#curl")).to_contain_text(f"{engine.url}/v1/skills/my-team/console-form/run")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#result")).to_be_visible(timeout=120_000)
    result = json.loads(page.locator("#result").inner_text())
    line = "formal letter to Ada in Berlin 10115, 3 copies, urgent=True, tags=blue"
    assert result == {"line": line, "reply": f"echo: {line}"}


def test_a_message_stream_grows_in_the_page(engine: EngineProcess, page: Any) -> None:
    page.goto(f"{engine.url}/ui#/playground/my-team/streamer")
    page.get_by_label("Input (JSON)").fill('{"mode": "chat_stream", "model": "endless", "text": "go"}')
    page.get_by_role("button", name="Run").click()
    text = page.locator("#transcript .text")
    expect(text).to_contain_text("0 1", timeout=120_000)
    first = text.inner_text()
    page.wait_for_function(
        f"document.querySelector('#transcript .text').innerText.length > {len(first) + 10}", timeout=60_000
    )
    later = text.inner_text()
    assert later.startswith(first.strip()) and later.split()[:3] == ["0", "1", "2"]
    expect(page.get_by_role("button", name="Run")).to_be_disabled()  # still streaming
    page.goto("about:blank")  # leaving the page ends the stream and the invocation


def test_reasoning_is_shown_apart_from_the_message_text(engine: EngineProcess, page: Any) -> None:
    page.goto(f"{engine.url}/ui#/playground/my-team/v04-stream")
    page.get_by_label("Input (JSON)").fill('{"mode": "reasoning"}')
    page.get_by_role("button", name="Run").click()
    message = page.locator("#transcript .message")
    expect(message.locator(".text")).to_have_text("Answer", timeout=120_000)
    expect(message.locator(".reasoning")).to_be_visible()
    expect(message.locator(".reasoning")).to_have_text("Reasoning Let me think.")
    expect(message.locator(".text")).not_to_contain_text("think")


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
    expect(chat.locator("summary")).to_contain_text("test-model · 7 in / 3 out tokens")
    expect(page.locator('li[data-span="skill_execution"]')).to_have_count(1)
    expect(page.locator('li[data-span="POST /v1/skills/{namespace}/{name}/run"]')).to_have_count(1)
    expect(page.locator("h1")).to_have_text("my-team/console-form")
    expect(page.locator("#logs")).to_contain_text("skill stdout: writing to Grace in Paris")
    chat.locator("summary").click()
    expect(chat.locator("pre")).to_contain_text('"gen_ai.usage.output_tokens": 3')


def test_api_docs_render_without_internet(engine: EngineProcess, page: Any, outside: Outside) -> None:
    page.goto(f"{engine.url}/api-docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("pharia-engine", timeout=60_000)
    run_route = page.locator(".opblock-summary-path", has_text="/v1/skills/{namespace}/{name}/run")
    expect(run_route).to_be_visible()
    page.goto(f"{engine.url}/ui")
    expect(page.locator('article[data-skill="test-beta/hello"]')).to_be_visible()
    time.sleep(0.5)
    assert outside.urls == []


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, compiled_cache: Path, iam: str
) -> Iterator[EngineProcess]:
    """An engine that asks for a token: the IAM test server accepts `good-…` and rejects `bad-…` tokens."""
    process = engine_with_skills(
        tmp_path_factory.mktemp("console-guarded"),
        {},
        {"AUTHORIZATION_URL": iam, "WASMTIME_CACHE_DIR": str(compiled_cache), "SKILL_TIMEOUT": "120s"},
    )
    warm = [WarmUp.metadata("test-beta", "tool_caller", {"Authorization": "Bearer good-token"})]
    with running(process, warm, timeout=180) as started:
        yield started


def test_the_token_form_asks_rejects_and_keeps_the_token_for_the_tab(
    guarded: EngineProcess, page: Any
) -> None:
    page.goto(f"{guarded.url}/ui")
    form = page.locator("#token-form")
    expect(form).to_be_visible(timeout=60_000)
    page.get_by_label("API token").fill("bad-token")
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#token-error")).to_have_text("The token was rejected.", timeout=60_000)
    page.get_by_label("API token").fill("good-token")
    page.get_by_role("button", name="Use token").click()
    expect(page.locator('article[data-skill="test-beta/hello"]')).to_be_visible(timeout=60_000)
    expect(form).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('skill-engine-token')") == "good-token"
    assert page.evaluate("localStorage.length") == 0  # never kept beyond the tab
    page.reload()
    expect(page.locator('article[data-skill="test-beta/hello"]')).to_be_visible(timeout=60_000)
    expect(form).to_be_hidden()


def test_tool_events_are_shown_apart_from_the_message_text(guarded: EngineProcess, page: Any) -> None:
    page.goto(f"{guarded.url}/ui")
    page.evaluate("sessionStorage.setItem('skill-engine-token', 'good-token')")
    page.goto(f"{guarded.url}/ui#/playground/test-beta/tool_caller")
    page.get_by_label("Input (JSON)").fill("{}")
    page.get_by_role("button", name="Run").click()
    transcript = page.locator("#transcript")
    expect(transcript.locator(".message .text")).to_have_text(
        "The result of calling the add tool for a=1 and b=2 is: 3", timeout=120_000
    )
    expect(transcript.locator(".tool")).to_have_text(["Tool add: begin", "Tool add: end"])
    expect(transcript.locator(".tool-begin")).to_have_count(1)
