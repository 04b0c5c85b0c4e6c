"""Every `pharia:skill` world the engine accepts (0.2, 0.3's siblings 0.4 and 0.5), and the load errors of
components it does not (engine-spec §4.1–4.3, §2.4), through real HTTP against one engine (stable feature
set, so 0.5 is "not supported yet" here; `test_wit_alpha.py` serves it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
import wasmtime
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_run import SERVER_ERROR_PREFIX, USER_CODE_PREFIX
from tests.e2e.test_stream import parse_sse
from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.openai_server import OpenAIServer
from tests.support.skills import WIT, build_raw_skill, unstable_copy

LOAD_ERROR = SERVER_ERROR_PREFIX + "Error loading skill: "
TOO_NEW = (
    "is not supported by this Kernel installation yet. "
    "Try updating your Kernel version or downgrading your SDK."
)
ADMIN = "admin-secret"
IS_FUNCTION = "The skill is designed to be executed as a function. Please invoke it via the /run endpoint."


def wat_component(exports: str, imports: str = "") -> bytes:
    """A tiny component exporting an instance `exports` with a `run` function (enough to be inspected)."""
    return bytes(
        wasmtime.wat2wasm(
            f"""(component {imports}
          (core module $m (func (export "run")))
          (core instance $ci (instantiate $m))
          (func $run (canon lift (core func $ci "run")))
          (instance $i (export "run" (func $run)))
          (export "{exports}" (instance $i)))"""
        )
    )


@pytest.fixture(scope="module")
def v0_5_wasm() -> Path:
    return build_raw_skill("wit_v0_4", unstable_copy(WIT / "skill@0.4", "0.5.0", "alpha"), "skill", "alpha")


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
    v0_5_wasm: Path,
) -> Iterator[EngineProcess]:
    skills = {
        "v02": build_raw_skill("wit_v0_2", WIT / "skill@0.2", "skill"),
        "v04": build_raw_skill("wit_v0_4", WIT / "skill@0.4", "skill"),
        "v04-stream": build_raw_skill("wit_v0_4_stream", WIT / "skill@0.4", "message-stream-skill"),
        "v05": v0_5_wasm,
    }
    workdir = tmp_path_factory.mktemp("engine-wit")
    _, url = openai
    process = engine_with_skills(
        workdir,
        skills,
        {
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "NAMESPACES__MY_TEAM__NATIVE_TOOLS": '["add", "saboteur"]',
            "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
            "DOCUMENTS__ADMIN_TOKEN": ADMIN,
        },
    )
    directory = workdir / "skills"
    (directory / "core.wasm").write_bytes(wasmtime.wat2wasm("(module)"))
    (directory / "too-new.wasm").write_bytes(wat_component("pharia:skill/skill-handler@0.6.0"))
    (directory / "patch-too-new.wasm").write_bytes(wat_component("pharia:skill/skill-handler@0.4.1"))
    (directory / "too-old.wasm").write_bytes(wat_component("pharia:skill/skill-handler@0.1.0"))
    (directory / "no-skill.wasm").write_bytes(wat_component("acme:tools/handler@1.0.0"))
    http_import = '(import "wasi:http/outgoing-handler@0.2.0" (instance (export "handle" (func))))'
    (directory / "http.wasm").write_bytes(wat_component("pharia:skill/skill-handler@0.2.0", http_import))
    with process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=180) as client:
        yield client


def run(client: httpx.Client, skill: str, body: Any) -> httpx.Response:
    return client.post(f"/v1/skills/my-team/{skill}/run", json=body)


def stream(client: httpx.Client, skill: str, body: Any) -> list[tuple[str, Any]]:
    response = client.post(f"/v1/skills/my-team/{skill}/message-stream", json=body)
    assert response.status_code == 200
    return parse_sse(response.content)


def last_chat(openai: tuple[OpenAIServer, str], model: str) -> dict[str, Any]:
    backend, _ = openai
    bodies = [r["body"] for r in backend.requests if r["path"].endswith("/chat/completions")]
    return next(b for b in reversed(bodies) if b["model"] == model)


def test_skill_wit_is_the_0_3_world_verbatim(client: httpx.Client) -> None:
    response = client.get("/skill.wit")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    shipped = resources.files("skill_engine").joinpath("wit/skill@0.3/skill.wit").read_bytes()
    assert response.content == shipped
    assert response.text.startswith("package pharia:skill@0.3.11;\n")
    assert "world message-stream-skill" in response.text


# -- 0.2 -------------------------------------------------------------------------------------------


def test_v0_2_runs(client: httpx.Client) -> None:
    response = run(client, "v02", {"mode": "echo", "payload": [1, "two"]})
    assert response.status_code == 200, response.text
    assert response.json() == [1, "two"]


def test_v0_2_chat_is_v1_chat(client: httpx.Client, openai: tuple[OpenAIServer, str]) -> None:
    response = run(client, "v02", {"mode": "chat", "model": "m-v02", "text": "hi there"})
    assert response.status_code == 200, response.text
    assert response.json() == {"role": "assistant", "content": "echo: hi there", "finish_reason": "stop"}
    sent = last_chat(openai, "m-v02")
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi there"},
    ]
    assert (sent["max_tokens"], sent["temperature"]) == (16, 0.5)
    assert "logprobs" not in sent and "tools" not in sent


def test_v0_2_complete_all(client: httpx.Client) -> None:
    response = run(client, "v02", {"mode": "complete", "model": "m", "prompts": ["a", "b"]})
    assert response.status_code == 200, response.text
    assert response.json() == [" completed: a", " completed: b"]


def test_v0_2_chunk_and_language(client: httpx.Client) -> None:
    chunks = run(client, "v02", {"mode": "chunk", "model": "m", "text": "123456"})
    assert chunks.status_code == 200, chunks.text
    assert chunks.json() == ["123", "456"]  # the OpenAI backend has no tokenizer: characters
    german = run(client, "v02", {"mode": "language", "text": "Ich spreche Deutsch nur ein bisschen."})
    assert german.json() == "deu"
    french_text = "Parlez-vous français? Non, je ne parle pas français."
    french = run(client, "v02", {"mode": "language", "text": french_text})
    assert french.json() is None


def test_v0_2_documents_against_the_embedded_index(client: httpx.Client) -> None:
    base, auth = "/v1/documents/handbook/policies", {"Authorization": f"Bearer {ADMIN}"}
    assert client.put(f"{base}/indexes/lexical", json={"chunk_size": 120}, headers=auth).status_code == 204
    documents: list[tuple[str, Any]] = [
        (
            "travel",
            {
                "contents": [
                    {"modality": "text", "text": "Travel expenses are refunded within thirty days."},
                    {"modality": "image", "bytes": "iVBORw0KGgo="},
                ],
                "metadata": {"year": 2021},
            },
        ),
        ("remote", {"contents": [{"modality": "text", "text": "Remote work is allowed on Fridays."}]}),
    ]
    for name, body in documents:
        assert client.put(f"{base}/{name}", json=body, headers=auth).status_code == 204
    query = {"index": ["handbook", "policies", "lexical"], "query": "refunded travel", "max_results": 1}
    found = run(client, "v02", {"mode": "search", **query})
    assert found.status_code == 200, found.text
    [[path, content, score]] = found.json()
    assert (path, content) == (
        ["handbook", "policies", "travel"],
        "Travel expenses are refunded within thirty days.",
    )
    assert 0 < score <= 1
    none = run(client, "v02", {"mode": "search", **query, "query": "fridays", "min_score": 2.0})
    assert none.json() == []
    paths = [["handbook", "policies", "travel"], ["handbook", "policies", "remote"]]
    response = run(client, "v02", {"mode": "documents", "paths": paths})
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            "path": paths[0],
            "contents": ["Travel expenses are refunded within thirty days.", "<image>"],
            "metadata": {"year": 2021},
        },
        {"path": paths[1], "contents": ["Remote work is allowed on Fridays."], "metadata": None},
    ]
    assert run(client, "v02", {"mode": "metadata", "path": paths[0]}).json() == {"year": 2021}
    assert run(client, "v02", {"mode": "metadata", "path": paths[1]}).json() is None
    missing = run(client, "v02", {"mode": "metadata", "path": ["handbook", "policies", "nope"]})
    assert missing.status_code == 503
    assert missing.text.endswith(
        "Document `nope` not found in collection `handbook/policies` of the embedded document index."
    )


def test_v0_2_guest_errors(client: httpx.Client) -> None:
    internal = run(client, "v02", {"mode": "internal"})
    assert (internal.status_code, internal.text) == (400, USER_CODE_PREFIX + "the 0.2 skill failed")
    invalid = run(client, "v02", {"mode": "invalid-input"})
    assert invalid.status_code == 400
    assert invalid.text == "The skill had trouble interpreting the input:\n\nmode must be known"
    output = run(client, "v02", {"mode": "invalid-output"})
    assert output.status_code == 500
    assert output.text.startswith("The skill returned an output the Kernel could not interpret.")


def test_v0_2_metadata_is_v0(client: httpx.Client) -> None:
    response = client.get("/v1/skills/my-team/v02/metadata")
    assert response.status_code == 200
    assert response.json() == {
        "description": None,
        "version": None,
        "skill_type": "function",
        "input_schema": None,
        "output_schema": None,
    }


def test_v0_2_is_a_function(client: httpx.Client) -> None:
    assert stream(client, "v02", {}) == [("error", {"message": IS_FUNCTION})]


# -- 0.4 -------------------------------------------------------------------------------------------


def test_v0_4_runs_and_reports_metadata(client: httpx.Client) -> None:
    response = run(client, "v04", {"mode": "echo", "payload": {"x": 1}})
    assert response.status_code == 200, response.text
    assert response.json() == {"x": 1}
    metadata = client.get("/v1/skills/my-team/v04/metadata").json()
    assert metadata["version"] == "0.4"
    assert metadata["description"] == "A 0.4 test skill"
    assert metadata["skill_type"] == "function"
    assert metadata["input_schema"]["required"] == ["mode"]


def test_v0_4_chat_splits_think_tags(client: httpx.Client) -> None:
    response = run(client, "v04", {"mode": "chat", "model": "thinker", "text": "q"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "content": " The answer",
        "reasoning_content": "pondering",
        "tool_calls": None,
        "finish_reason": "stop",
    }


def test_v0_4_chat_passes_reasoning_content(client: httpx.Client) -> None:
    response = run(client, "v04", {"mode": "chat", "model": "reasoner", "text": "q"})
    assert response.json()["content"] == "42"
    assert response.json()["reasoning_content"] == "deep thoughts"


def test_v0_4_chat_with_tools(client: httpx.Client, openai: tuple[OpenAIServer, str]) -> None:
    response = run(client, "v04", {"mode": "tools", "model": "tool-caller"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "content": None,
        "reasoning_content": None,
        "tool_calls": [["call-9", "weather", '{"city":"Paris"}']],
        "finish_reason": "tool_calls",
    }
    sent = last_chat(openai, "tool-caller")
    call = {"name": "weather", "arguments": '{"city":"Paris"}'}
    assert sent["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "call-1", "type": "function", "function": call}],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "call-1"},
    ]
    parameters = {"type": "object", "properties": {"mode": {"type": "string"}}, "required": ["mode"]}
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "The weather in a city",
                "parameters": parameters,
                "strict": True,
            },
        }
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "description": "A reply", "schema": {}, "strict": True},
    }
    assert sent["reasoning_effort"] == "low"
    assert (sent["max_completion_tokens"], sent["logprobs"], sent["top_logprobs"]) == (64, True, 1)
    assert "max_tokens" not in sent


def test_v0_4_complete_has_echo(client: httpx.Client, openai: tuple[OpenAIServer, str]) -> None:
    response = run(client, "v04", {"mode": "complete", "text": "abc"})
    assert response.status_code == 200, response.text
    assert response.json() == " completed: abc"
    backend, _ = openai
    completions = [r["body"] for r in backend.requests if r["path"].endswith("/completions")]
    assert completions[-1]["echo"] is True


def test_v0_4_completion_stream(client: httpx.Client) -> None:
    response = run(client, "v04", {"mode": "completion_stream", "model": "m-v04", "text": "x y"})
    assert response.status_code == 200, response.text
    assert response.json() == [
        ["append", " completed:"],
        ["append", " x"],
        ["append", " y"],
        ["end", "length"],
        ["usage", 5, 2],
    ]


def test_v0_4_invoke_tool(client: httpx.Client) -> None:
    calls = [{"name": "add", "args": {"a": 40, "b": 2}}, {"name": "saboteur", "args": {}}]
    response = run(client, "v04", {"mode": "invoke_tools", "calls": calls})
    assert response.status_code == 200, response.text
    assert response.json() == [{"ok": ["42"]}, {"error": "Out of cheese."}]


def test_v0_4_list_tools(client: httpx.Client) -> None:
    response = run(client, "v04", {"mode": "list_tools"})
    assert response.status_code == 200, response.text
    tools = response.json()
    assert [(name, description) for name, description, _ in tools] == [
        ("add", "Add two numbers"),
        ("saboteur", "A tool that always raises an error."),
    ]
    assert tools[0][2]["title"] == "addArguments"
    assert tools[0][2]["required"] == ["a", "b"]


def test_v0_4_chunk_and_language(client: httpx.Client) -> None:
    chunks = run(client, "v04", {"mode": "chunk", "text": "ääääää"})
    assert chunks.status_code == 200, chunks.text
    assert chunks.json() == {"chunks": ["äää", "äää"], "offsets": [["äää", 0, 0], ["äää", 6, 3]]}
    german = run(client, "v04", {"mode": "language", "text": "Ich spreche Deutsch nur ein bisschen."})
    assert (german.status_code, german.json()) == (200, "deu")
    french = run(client, "v04", {"mode": "language", "text": "Parlez-vous français? Non, je ne parle pas."})
    assert (french.status_code, french.json()) == (200, None)


def test_v0_4_user_error(client: httpx.Client) -> None:
    response = run(client, "v04", {"mode": "internal"})
    assert (response.status_code, response.text) == (400, USER_CODE_PREFIX + "the 0.4 skill failed")


def test_v0_4_stream_writes_reasoning_events(client: httpx.Client) -> None:
    response = client.post("/v1/skills/my-team/v04-stream/message-stream", json={"mode": "reasoning"})
    assert response.status_code == 200
    assert response.text == (
        'event: message\ndata: {"type":"begin"}\n\n'
        'event: reasoning\ndata: {"type":"reasoning","text":"Let me think."}\n\n'
        'event: message\ndata: {"type":"append","text":"Answer"}\n\n'
        'event: message\ndata: {"type":"end","payload":{"ok":true}}\n\n'
    )


def test_v0_4_reasoning_needs_an_open_message(client: httpx.Client) -> None:
    assert stream(client, "v04-stream", {"mode": "reasoning_without_begin"}) == [
        (
            "error",
            {
                "message": "The skill inserted a reasoning message into the stream, which has not been "
                "preceded by a message begin. This is a bug in the skill. Please contact its developer."
            },
        )
    ]


def test_v0_4_chat_stream_separates_reasoning(client: httpx.Client) -> None:
    events = stream(client, "v04-stream", {"mode": "chat_stream", "model": "thinker", "text": "q"})
    assert events == [
        ("message", {"type": "begin"}),
        ("reasoning", {"type": "reasoning", "text": "I am "}),
        ("reasoning", {"type": "reasoning", "text": "thinking..."}),
        ("message", {"type": "append", "text": "The ans"}),
        ("message", {"type": "append", "text": "wer"}),
        ("message", {"type": "end", "payload": {"finish": "stop"}}),
    ]


def test_v0_4_chat_stream_tool_calls_and_reasoning_content(client: httpx.Client) -> None:
    events = stream(client, "v04-stream", {"mode": "chat_stream", "model": "tool-caller", "text": "q"})
    appends = [json.loads(data["text"]) for name, data in events if data.get("type") == "append"]
    assert appends == [[[0, "call-9", "weather", ""]], [[0, None, None, '{"city":"Paris"}']]]
    assert events[-1] == ("message", {"type": "end", "payload": {"finish": "tool_calls"}})
    events = stream(client, "v04-stream", {"mode": "chat_stream", "model": "reasoner", "text": "q"})
    assert [data.get("text") for _, data in events[1:-1]] == ["deep ", "thoughts", "42"]
    assert [name for name, _ in events[1:-1]] == ["reasoning", "reasoning", "message"]


def test_v0_4_stream_errors_and_metadata(client: httpx.Client) -> None:
    assert stream(client, "v04-stream", {"mode": "internal"}) == [
        ("error", {"message": USER_CODE_PREFIX + "the 0.4 stream failed"})
    ]
    response = run(client, "v04-stream", {})
    assert response.status_code == 400
    assert "Please invoke it via the /message-stream endpoint." in response.text
    metadata = client.get("/v1/skills/my-team/v04-stream/metadata").json()
    assert metadata == {
        "description": None,
        "version": None,
        "skill_type": "message_stream",
        "input_schema": None,
        "output_schema": None,
    }


# -- load errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skill", "detail"),
    [
        ("v05", f"Skill version 0.5.0 {TOO_NEW}"),
        ("too-new", f"Skill version 0.6.0 {TOO_NEW}"),
        ("patch-too-new", f"Skill version 0.4.1 {TOO_NEW}"),
        ("too-old", "Skill version 0.1.0 is no longer supported by the Kernel. Try upgrading your SDK."),
        ("no-skill", "Web assembly component is not using a supported pharia:skill world."),
        ("core", "Web Assembly is not a component."),
    ],
)
def test_load_errors(client: httpx.Client, skill: str, detail: str) -> None:
    response = run(client, skill, {})
    assert (response.status_code, response.text) == (503, LOAD_ERROR + detail)
    metadata = client.get(f"/v1/skills/my-team/{skill}/metadata")
    assert (metadata.status_code, metadata.text) == (503, LOAD_ERROR + detail)


def test_imports_the_host_does_not_provide(client: httpx.Client) -> None:
    response = run(client, "http", {})
    assert response.status_code == 503
    assert response.text.startswith(LOAD_ERROR + "Failed to pre-instantiate the component: ")
    assert "wasi:http/outgoing-handler@0.2.0" in response.text


# -- kernel_csi_requests_total on every line --------------------------------------------------------


def csi_requests(engine: EngineProcess, function: str) -> float:
    text = httpx.get(engine.metrics_url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "kernel_csi_requests_total" and sample.labels.get("function") == function:
                return sample.value
    return 0.0


@pytest.mark.parametrize(
    ("skill", "body", "function", "counted"),
    [
        ("v02", {"mode": "chat", "model": "m-count", "text": "hi"}, "chat", 1),
        ("v02", {"mode": "complete", "model": "m-count", "prompts": ["a", "b", "c"]}, "complete", 3),
        ("v02", {"mode": "chunk", "model": "m-count", "text": "one two three four"}, "chunk", 1),
        ("v04", {"mode": "chat", "text": "hi"}, "chat", 1),
        ("v04", {"mode": "complete", "text": "a"}, "complete", 1),
        ("v04", {"mode": "chunk", "text": "one two three four"}, "chunk", 2),  # chunk + chunk-with-offsets
        ("v04", {"mode": "language", "text": "Das ist ein kleines Haus"}, "select_language", 1),
    ],
)
def test_every_wit_line_counts_its_csi_requests(
    engine: EngineProcess, client: httpx.Client, skill: str, body: Any, function: str, counted: int
) -> None:
    before = csi_requests(engine, function)
    response = run(client, skill, body)
    assert response.status_code == 200, response.text
    assert csi_requests(engine, function) - before == counted


def test_v0_4_chat_stream_is_counted_once(engine: EngineProcess, client: httpx.Client) -> None:
    before = csi_requests(engine, "chat_stream")
    events = stream(client, "v04-stream", {"mode": "chat_stream", "model": "thinker", "text": "q"})
    assert events[-1] == ("message", {"type": "end", "payload": {"finish": "stop"}})
    assert csi_requests(engine, "chat_stream") - before == 1
