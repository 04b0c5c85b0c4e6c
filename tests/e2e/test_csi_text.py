"""Chunking, language selection, completion and explanation from a real skill, against a loopback Aleph
Alpha inference server (`INFERENCE_URL`) that checks paths, bodies and the forwarded user token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.aleph_alpha_server import TOKENIZER_MODEL, AlephAlphaServer
from tests.support.engine import engine_with_skills
from tests.support.skills import build_skill

USER_TOKEN = "user-token"
RUNTIME_PREFIX = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, compiled_cache: Path, aleph_alpha: AlephAlphaServer
) -> Iterator[httpx.Client]:
    with (
        engine_with_skills(
            tmp_path_factory.mktemp("engine-csi-text"),
            {"csi-text": build_skill("csi_text")},
            {"INFERENCE_URL": aleph_alpha.url, "WASMTIME_CACHE_DIR": str(compiled_cache)},
        ) as engine,
        httpx.Client(base_url=engine.url, timeout=120) as client,
    ):
        yield client


def run(client: httpx.Client, body: dict[str, Any], token: str | None = USER_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/v1/skills/my-team/csi-text/run", json=body, headers=headers)


def result(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_chunk_by_characters_with_overlap(client: httpx.Client) -> None:
    body = {"mode": "chunk", "text": "123456", "max_tokens": 3, "overlap": 2, "model": "no-tokenizer"}
    assert result(run(client, body)) == [["123", "234", "345", "456"]]


def test_chunk_with_offsets_counts_bytes_and_characters(client: httpx.Client) -> None:
    body = {
        "mode": "chunk_with_offsets",
        "texts": ["Döner macht schöner ☝🏾! Remember that.", "123456"],
        "max_tokens": 10,
        "overlap": 3,
    }
    assert result(run(client, body)) == [
        [
            ["Döner", 0, 0],
            ["macht", 7, 6],
            ["schöner ☝🏾", 13, 12],
            ["☝🏾!", 22, 20],
            ["Remember", 31, 24],
            ["that.", 40, 33],
        ],
        [["123456", 0, 0]],
    ]
    body = {"mode": "chunk_with_offsets", "text": "123456", "character_offsets": False, "overlap": 2}
    assert result(run(client, body)) == [
        [["123", 0, None], ["234", 1, None], ["345", 2, None], ["456", 3, None]]
    ]


def test_chunk_counts_tokens_with_the_model_tokenizer(
    client: httpx.Client, aleph_alpha: AlephAlphaServer
) -> None:
    text = "hello world this is a test of the tokenizer"
    body = {
        "mode": "chunk_with_offsets",
        "text": text,
        "model": TOKENIZER_MODEL,
        "max_tokens": 3,
        "overlap": 1,
    }
    expected = [
        [
            ["hello world this", 0, 0],
            ["this is a", 12, 12],
            ["a test of", 20, 20],
            ["of the tokenizer", 27, 27],
        ]
    ]
    assert result(run(client, body)) == expected
    assert result(run(client, {**body, "mode": "chunk"})) == [[c[0] for c in expected[0]]]
    # Fetched once with the caller's token, then cached.
    assert aleph_alpha.tokens(f"/models/{TOKENIZER_MODEL}/tokenizer") == [f"Bearer {USER_TOKEN}"]


def test_chunk_without_token_falls_back_to_characters(
    client: httpx.Client, aleph_alpha: AlephAlphaServer
) -> None:
    body = {"mode": "chunk", "text": "hello world", "model": "other-model", "max_tokens": 6}
    assert result(run(client, body, token=None)) == [["hello", "world"]]
    assert "/models/other-model/tokenizer" not in [r["path"] for r in aleph_alpha.requests]


def test_chunk_overlap_not_below_capacity_is_a_runtime_error(client: httpx.Client) -> None:
    response = run(client, {"mode": "chunk", "text": "123456", "max_tokens": 3, "overlap": 3})
    assert response.status_code == 503
    assert (
        response.text == RUNTIME_PREFIX + "The overlap is larger than or equal to the desired chunk capacity"
    )


def test_select_language(client: httpx.Client) -> None:
    texts = [
        "A little bit is better than nothing.",
        "Ich spreche Deutsch nur ein bisschen.",
        "Parlez-vous français? Non, je ne parle pas français.",
    ]
    assert result(run(client, {"mode": "select_language", "texts": texts})) == ["eng", "deu", None]
    sdk = {"mode": "select_language_sdk", "text": texts[1], "languages": ["eng", "deu"]}
    assert result(run(client, sdk)) == "deu"


def test_select_language_unsupported_code(client: httpx.Client) -> None:
    response = run(client, {"mode": "select_language", "text": "foo", "languages": ["eng", "foo"]})
    assert response.status_code == 503
    assert response.text == RUNTIME_PREFIX + "the language 'foo' is unsupported"


def test_complete_maps_request_and_response(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    before = len(aleph_alpha.bodies("/complete"))
    body = {
        "mode": "complete",
        "texts": ["first", "second"],
        "model": "m",
        "max_tokens": 5,
        "stop": ["\n"],
        "echo": True,
        "special": True,
        "top": 2,
    }
    completions = result(run(client, body))
    assert completions == [
        {
            "text": f"{prompt} done now<|endoftext|>",
            "finish_reason": "stop",
            "usage": [4, 2],
            "logprobs": [["done", -0.5, ["done", "maybe"]], ["now", -0.5, ["now", "maybe"]]],
        }
        for prompt in ["first", "second"]
    ]
    sent = aleph_alpha.bodies("/complete")[before:]
    assert sorted(sent, key=lambda b: str(b["prompt"])) == [
        {
            "model": "m",
            "prompt": [{"type": "text", "data": prompt}],
            "maximum_tokens": 5,
            "stop_sequences": ["\n"],
            "raw_completion": True,
            "log_probs": 2,
            "tokens": True,
            "echo": True,
        }
        for prompt in ["first", "second"]
    ]
    assert set(aleph_alpha.tokens("/complete")[before:]) == {f"Bearer {USER_TOKEN}"}


def test_complete_plain(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    completions = result(run(client, {"mode": "complete", "text": "hi", "max_tokens": 2, "model": "m"}))
    assert completions == [{"text": " done now", "finish_reason": "length", "usage": [4, 2], "logprobs": []}]
    assert aleph_alpha.bodies("/complete")[-1] == {
        "model": "m",
        "prompt": [{"type": "text", "data": "hi"}],
        "maximum_tokens": 2,
    }


def test_first_failure_of_a_batch_ends_the_invocation(client: httpx.Client) -> None:
    response = run(client, {"mode": "complete", "texts": ["fine", "fail", "fine too"], "model": "m"})
    assert response.status_code == 503
    assert response.text == (
        RUNTIME_PREFIX
        + 'HTTP request failed with status code 500. Body:\n{"error":"the model broke","code":"INTERNAL"}'
    )


def test_complete_retries_when_busy(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    completions = result(run(client, {"mode": "complete", "text": "retry me", "model": "busy-once"}))
    assert completions[0]["text"] == " done now"
    prompts = [b["prompt"][0]["data"] for b in aleph_alpha.bodies("/complete")]
    assert prompts.count("retry me") == 2


@pytest.mark.parametrize(
    ("token", "model", "error"),
    [
        (
            None,
            "m",
            "Doing an inference request against the Aleph Alpha inference API requires a PhariaAI token. "
            "Please provide a valid token in the Authorization header.",
        ),
        ("bad-token", "m", "Unauthorized"),
        (
            USER_TOKEN,
            "unknown",
            "The Skill tried to access a model that was not found. Please check the provided model name. You "
            "can query the list of available models at the `models` endpoint of the inference API. If you "
            "believe the model should be available, contact the operator of your PhariaAI instance.",
        ),
    ],
)
def test_complete_errors(client: httpx.Client, token: str | None, model: str, error: str) -> None:
    response = run(client, {"mode": "complete", "text": "x", "model": model}, token=token)
    assert response.status_code == 503
    assert response.text == RUNTIME_PREFIX + error


def test_completion_stream(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    streamed = result(run(client, {"mode": "complete_stream", "text": "go", "model": "m", "max_tokens": 7}))
    assert streamed == {"text": [" done", " now"], "finish_reason": "stop"}
    assert aleph_alpha.bodies("/complete")[-1] == {
        "model": "m",
        "prompt": [{"type": "text", "data": "go"}],
        "maximum_tokens": 7,
        "raw_completion": True,  # the SDK's default: return_special_tokens=True
        "stream": True,
    }


def test_explain(client: httpx.Client, aleph_alpha: AlephAlphaServer) -> None:
    body = {"mode": "explain", "text": "Say hi", "target": " hi", "model": "m", "stop": ["sentence"]}
    assert result(run(client, body)) == [[0, 6, 0.75], [0, 1, -0.25]]
    assert aleph_alpha.bodies("/explain")[-1] == {
        "model": "m",
        "prompt": [{"type": "text", "data": "Say hi"}],
        "target": " hi",
        "prompt_granularity": {"type": "sentence"},
    }
    assert result(run(client, {**body, "stop": []})) == [[0, 6, 0.75], [0, 1, -0.25]]
    assert "prompt_granularity" not in aleph_alpha.bodies("/explain")[-1]
    response = run(client, {**body, "target": "image-first"})
    assert response.status_code == 503
    assert (
        response.text
        == RUNTIME_PREFIX + "We do not support multi-model prompts, so the first item will always be text."
    )
