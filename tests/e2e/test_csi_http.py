"""CSI over HTTP (`/csi/v1`, `/csi/v2`, legacy `/csi`) against a live engine with a loopback Aleph Alpha
backend and the embedded document index; the SDK's own `DevCsi` runs against it in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.aleph_alpha_server import AlephAlphaServer
from tests.support.engine import engine_with_skills
from tests.support.skills import SOURCES, tool_env

TOKEN = "user-token"
ADMIN = "admin-token"
FAILED = "Something went wrong: "
TOO_NEW = (
    "The specified CSI version is not supported by this Kernel installation yet. Try updating your Kernel "
    "version or downgrading your SDK."
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, aleph_alpha: AlephAlphaServer) -> Iterator[httpx.Client]:
    workdir = tmp_path_factory.mktemp("engine-csi-http")
    env = {
        "INFERENCE_URL": aleph_alpha.url,
        "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
        "DOCUMENTS__ADMIN_TOKEN": ADMIN,
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with (
        engine_with_skills(workdir, {}, env) as engine,
        httpx.Client(base_url=engine.url, timeout=60, headers=headers) as client,
    ):
        yield client


def csi(client: httpx.Client, function: str, body: Any, version: str = "v1", **kwargs: Any) -> httpx.Response:
    return client.post(f"/csi/{version}/{function}", json=body, **kwargs)


def completion_request(prompt: str, **params: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "prompt": prompt,
        "params": {"return_special_tokens": False, "stop": [], "logprobs": "no", **params},
    }


def chat_request(model: str, content: str | None = "hi", role: str = "user") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": role, "content": content}], "params": {"logprobs": "no"}}


def test_chunk_with_offsets_by_characters(client: httpx.Client) -> None:
    params = {"model": "no-tokenizer", "max_tokens": 3, "overlap": 2}
    response = csi(
        client, "chunk_with_offsets", [{"text": "123456", "params": params, "character_offsets": True}]
    )
    assert response.status_code == 200
    assert response.json() == [
        [
            {"text": t, "byte_offset": i, "character_offset": i}
            for i, t in enumerate(["123", "234", "345", "456"])
        ]
    ]
    assert csi(client, "chunk", [{"text": "123456", "params": params}]).json() == [
        ["123", "234", "345", "456"]
    ]


def test_select_language_and_unsupported_code(client: httpx.Client) -> None:
    requests = [
        {"text": "A little bit is better than nothing.", "languages": ["eng", "deu"]},
        {"text": "Ich spreche Deutsch nur ein bisschen.", "languages": ["eng", "deu"]},
        {"text": "Parlez-vous français? Non, je ne parle pas français.", "languages": ["eng", "deu"]},
    ]
    assert csi(client, "select_language", requests).json() == ["eng", "deu", None]
    response = csi(client, "select_language", [{"text": "x", "languages": ["eng", "foo"]}])
    assert (response.status_code, response.text) == (500, FAILED + "the language 'foo' is unsupported")


def test_complete_forwards_token_and_echo(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    response = csi(client, "complete", [completion_request("a", echo=True), completion_request("b")])
    assert response.status_code == 200
    assert response.json() == [
        {"text": text, "finish_reason": "length", "logprobs": [], "usage": {"prompt": 4, "completion": 2}}
        for text in ["a done now", " done now"]
    ]
    echoed = {b["prompt"][0]["data"]: b.get("echo") for b in aleph_alpha.bodies("/complete")[-2:]}
    assert echoed == {"a": True, "b": None}
    assert aleph_alpha.tokens("/complete")[-1] == f"Bearer {TOKEN}"


def test_complete_without_token_fails_with_the_documented_text(client: httpx.Client) -> None:
    response = csi(client, "complete", [completion_request("a")], headers={"Authorization": ""})
    assert response.status_code == 400  # an empty Authorization header is not a bearer token
    with httpx.Client(base_url=str(client.base_url)) as anonymous:
        response = csi(anonymous, "complete", [completion_request("a")])
    assert response.status_code == 500
    assert response.text == (
        FAILED + "Doing an inference request against the Aleph Alpha inference API requires a PhariaAI "
        "token. Please provide a valid token in the Authorization header."
    )


def test_completion_stream_sse_framing(client: httpx.Client) -> None:
    response = csi(client, "completion_stream", completion_request("go", logprobs={"top": 1}))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.text == (
        'event: append\ndata: {"text":" done","logprobs":[]}\n\n'
        'event: append\ndata: {"text":" now","logprobs":[]}\n\n'
        'event: end\ndata: {"finish_reason":"stop"}\n\n'
        'event: usage\ndata: {"usage":{"prompt":4,"completion":2}}\n\n'
    )


def test_chat_v1_and_stream(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    response = csi(client, "chat", [chat_request("m", "hello")])
    assert response.json() == [
        {
            "message": {
                "role": "assistant",
                "content": "echo: hello",
                "tool_call_id": None,
                "tool_calls": None,
            },
            "finish_reason": "stop",
            "logprobs": [],
            "usage": {"prompt": 7, "completion": 3},
        }
    ]
    assert aleph_alpha.tokens("/chat/completions")[-1] == f"Bearer {TOKEN}"
    response = csi(client, "chat_stream", chat_request("m", "a b"))
    assert response.text == (
        'event: message_begin\ndata: {"role":"assistant"}\n\n'
        'event: message_append\ndata: {"content":"echo:","logprobs":[]}\n\n'
        'event: message_append\ndata: {"content":" a","logprobs":[]}\n\n'
        'event: message_append\ndata: {"content":" b","logprobs":[]}\n\n'
        'event: message_end\ndata: {"finish_reason":"stop"}\n\n'
        'event: usage\ndata: {"usage":{"prompt":7,"completion":3}}\n\n'
    )


def events(response: httpx.Response) -> list[tuple[str, Any]]:
    assert response.headers["content-type"] == "text/event-stream"
    blocks = [block.split("\n") for block in response.text.strip("\n").split("\n\n")]
    return [(b[0].removeprefix("event: "), json.loads(b[1].removeprefix("data: "))) for b in blocks]


def test_chat_v2_splits_think_tags(client: httpx.Client) -> None:
    (answer,) = csi(client, "chat", [chat_request("thinker")], version="v2").json()
    assert answer["message"] == {
        "role": "assistant",
        "content": " The answer",
        "reasoning_content": "pondering",
        "tool_call_id": None,
        "tool_calls": None,
    }
    streamed = events(csi(client, "chat_stream", chat_request("thinker"), version="v2"))
    assert streamed == [
        ("message_begin", {"role": "assistant"}),
        ("reasoning", {"content": "I am "}),
        ("reasoning", {"content": "thinking..."}),
        ("message_append", {"content": "The ans"}),
        ("message_append", {"content": "wer"}),
        ("message_end", {"finish_reason": "stop"}),
        ("usage", {"usage": {"prompt": 7, "completion": 3}}),
    ]


def test_chat_with_tools(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    request = chat_request("tool-caller", "Weather in Paris?")
    request["params"] |= {
        "tools": [{"name": "weather", "parameters": {"type": "object"}}],
        "tool_choice": {"named": "weather"},
        "response_format": "text",
    }
    (answer,) = csi(client, "chat", [request]).json()
    call = {"id": "call-9", "name": "weather", "arguments": '{"city":"Paris"}'}
    assert answer["message"] == {
        "role": "assistant",
        "content": None,
        "tool_call_id": None,
        "tool_calls": [call],
    }
    assert answer["finish_reason"] == "tool_calls"
    sent = aleph_alpha.bodies("/chat/completions")[-1]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert sent["response_format"] == {"type": "text"}
    streamed = events(csi(client, "chat_stream", request))
    assert [name for name, _ in streamed] == [
        "message_begin",
        "tool_call",
        "tool_call",
        "message_end",
        "usage",
    ]
    assert streamed[1][1] == {
        "tool_calls": [{"index": 0, "id": "call-9", "name": "weather", "arguments": ""}]
    }
    history = {
        "model": "m",
        "messages": [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "content": "sunny", "tool_call_id": "call-9"},
        ],
        "params": {"logprobs": "no"},
    }
    assert csi(client, "chat", [history]).json()[0]["message"]["content"] == "echo: sunny"
    function = {"name": "weather", "arguments": '{"city":"Paris"}'}
    assert aleph_alpha.bodies("/chat/completions")[-1]["messages"] == [
        {"role": "assistant", "tool_calls": [{"id": "call-9", "type": "function", "function": function}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "call-9"},
    ]
    # Without tools in the request, chat v1 treats a tool call as a backend bug (engine-spec §4.3).
    response = csi(client, "chat", [chat_request("tool-caller")])
    assert response.status_code == 500
    assert response.text.startswith(
        FAILED + "The inference backend returned a tool call, even though no tools"
    )


def test_chat_stream_error_event_and_conversion_errors(client: httpx.Client) -> None:
    response = csi(client, "chat_stream", chat_request("unknown-model"))
    assert response.status_code == 200
    assert response.text.startswith('event: error\ndata: {"message":"')
    response = csi(client, "chat", [chat_request("m", content=None)])
    assert (response.status_code, response.text) == (500, FAILED + "Non-assistant message must have content")
    response = csi(client, "chat_stream", chat_request("m", content=None, role="tool"))
    assert (response.status_code, response.text) == (500, FAILED + "Tool message must have content")


def test_explain(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    body = [{"prompt": "Say hi", "target": " hi", "model": "m", "granularity": "word"}]
    assert csi(client, "explain", body).json() == [
        [{"start": 0, "length": 6, "score": 0.75}, {"start": 0, "length": 1, "score": -0.25}]
    ]
    assert aleph_alpha.bodies("/explain")[-1]["prompt_granularity"] == {"type": "word"}


def test_tools(client: httpx.Client) -> None:
    body = {
        "namespace": "test-beta",
        "requests": [
            {"name": "add", "arguments": [{"name": "a", "value": 1}, {"name": "b", "value": 2}]},
            {"name": "saboteur", "arguments": []},
        ],
    }
    response = csi(client, "invoke_tool", body)
    assert (response.status_code, response.text) == (200, '[[{"text":"3","type":"text"}],"Out of cheese."]')
    tools = csi(client, "list_tools", {"namespace": "test-beta"}).json()
    assert [t["name"] for t in tools] == ["add", "saboteur", "subtract"]
    assert list(tools[0]["input_schema"]) == ["properties", "required", "title", "type"]
    response = csi(client, "list_tools", {"namespace": "nowhere"})
    assert (response.status_code, response.text) == (
        500,
        FAILED + 'You tried to list the tools for a namespace that does not exist: Namespace("nowhere")',
    )


def test_request_rejections(client: httpx.Client) -> None:
    assert csi(client, "no_such_function", []).status_code == 404
    response = csi(client, "chunk", [{"text": "x"}])
    assert response.status_code == 422
    assert response.text == "Failed to deserialize the JSON body into the target type: missing field `params`"
    response = client.post("/csi/v1/chunk", content=b"[]")
    assert response.status_code == 415
    response = client.post("/csi/v1/chunk", content=b"[", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert client.get("/csi/v1/chunk").status_code == 405


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"function": "complete"}, "A valid CSI version is required. Try upgrading your SDK."),
        (
            {"version": "0.1", "function": "complete"},
            "This CSI version is no longer supported by the Kernel. Try upgrading your SDK.",
        ),
        (
            {"version": "0.4", "function": "complete"},
            "This CSI version is no longer supported by the Kernel. Try upgrading your SDK.",
        ),
        *[
            ({"version": v, "function": "complete"}, TOO_NEW)
            for v in ["0.9", "1.0.0", "4294967295", "0.4294967295"]
        ],
        (
            {"version": "0.3", "function": "not_a_function"},
            "The CSI function not_a_function is not supported by this Kernel installation yet. Try updating "
            "your Kernel version or downgrading your SDK.",
        ),
        (
            {"version": "0.2", "function": "complete"},  # fields missing: reported as unsupported function
            "The CSI function complete is not supported by this Kernel installation yet. Try updating your "
            "Kernel version or downgrading your SDK.",
        ),
    ],
)
def test_legacy_version_errors(client: httpx.Client, body: dict[str, Any], error: str) -> None:
    response = client.post("/csi", json=body)
    assert response.status_code == 400
    assert response.json() == error


def test_legacy_functions(client: httpx.Client) -> None:
    complete = {
        "version": "0.2",
        "function": "complete",
        "prompt": "Hi",
        "model": "m",
        "params": {"max_tokens": 2, "temperature": None, "top_k": None, "top_p": None, "stop": []},
    }
    assert client.post("/csi", json=complete).json() == {"text": " done now", "finish_reason": "length"}
    chat = {
        "version": "0.2",
        "function": "chat",
        "model": "m",
        "messages": [{"role": "User", "content": "Say one word"}],
        "params": {"max_tokens": 5, "temperature": None, "top_p": None},
    }
    assert client.post("/csi", json=chat).json() == {
        "message": {"role": "assistant", "content": "echo: Say one word"},
        "finish_reason": "stop",
    }
    chunk = {
        "version": "0.3",
        "function": "chunk",
        "requests": [{"text": "123456", "params": {"model": "m", "max_tokens": 3, "overlap": 0}}],
    }
    assert client.post("/csi", json=chunk).json() == [["123", "456"]]
    language = {"version": "0.2", "function": "select_language", "text": "x", "languages": ["foo"]}
    response = client.post("/csi", json=language)
    assert (response.status_code, response.json()) == (500, "the language 'foo' is unsupported")
    metadata = {
        "version": "0.2",
        "function": "document_metadata",
        "document_path": {"namespace": "handbook", "collection": "policies", "name": "missing"},
    }
    response = client.post("/csi", json=metadata)
    assert response.status_code == 500
    assert "missing" in response.json()


def test_dev_csi_against_the_engine(
    client: httpx.Client, aleph_alpha: AlephAlphaServer, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    base = "/v1/documents/handbook/policies"
    assert client.put(f"{base}/indexes/lexical", json={"chunk_size": 200}, headers=admin).status_code == 204
    document = {
        "contents": [{"modality": "text", "text": "Every employee gets thirty days of vacation."}],
        "metadata": {"year": 2024},
    }
    assert client.put(f"{base}/vacation", json=document, headers=admin).status_code == 204

    env = {
        "PATH": os.environ.get("PATH", ""),
        "PHARIA_KERNEL_ADDRESS": str(client.base_url).rstrip("/"),
        "PHARIA_AI_TOKEN": TOKEN,
        "OTEL_SDK_DISABLED": "true",
    }
    script = SOURCES / "devcsi_calls.py"
    done = subprocess.run(
        [str(tool_env() / "bin" / "python"), str(script), "m"],
        cwd=tmp_path,  # no .env here for the SDK's load_dotenv
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["chat"] == ["assistant", "echo: hello there", "stop", [7, 3]]
    assert results["chat_stream"] == ["assistant", ["echo:", " stream", " this"], "stop", 3]
    assert results["complete"] == " done now<|endoftext|>"  # the SDK asks for special tokens by default
    assert results["completion_stream"] == [[" done", " now"], "stop"]
    assert results["chunk"] == [["123", 0], ["234", 1], ["345", 2], ["456", 3]]
    assert results["select_language"] == ["deu", None]
    assert results["explain"] == [[0, 6], [0, 1]]
    assert results["search"] == [["vacation", "Every employee gets thirty days of vacation.", 0, 43]]
    assert results["documents"] == [["Every employee gets thirty days of vacation.", {"year": 2024}]]
    assert results["invoke_tool"] == "3"
    assert results["list_tools"] == ["add", "saboteur", "subtract"]
    assert "Status Code: 500 Internal Server Error" in results["unknown_model"]["error"]
    assert "The Skill tried to access a model that was not found." in results["unknown_model"]["error"]
    assert set(aleph_alpha.tokens("/chat/completions")) == {f"Bearer {TOKEN}"}
