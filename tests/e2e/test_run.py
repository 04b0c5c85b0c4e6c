"""`/run`, `/metadata`, `/v1/skills` and the HTTP rejections, through real HTTP against a running engine."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.openai_server import OpenAIServer

TOKEN = "secret-backend-token"

SERVER_ERROR_PREFIX = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)
USER_CODE_PREFIX = (
    "The skill you called responded with an error. Maybe you should check your input, if it seems to be "
    "correct you may want to contact the skill developer. Error reported by Skill:\n\n"
)
NOT_FOUND = (
    "Sorry, we could not find the skill you requested in its namespace. This can have three causes:\n\n"
    "1. You sent the wrong skill name.\n2. You sent the wrong namespace.\n3. The skill is not configured in "
    "the namespace you requested. You may want to check the namespace configuration."
)


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    streamer_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("engine-run")
    _, url = openai
    process = engine_with_skills(
        workdir,
        {"probe": probe_wasm, "streamer": streamer_wasm},
        {
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": TOKEN,
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "NAMESPACES__GHOST__DIRECTORY": str(workdir / "missing"),
        },
    )
    (workdir / "skills" / "README.md").write_text("not a skill")
    with process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        # The first call compiles the skill (once per run, shared cache): keep it out of the tests' timing.
        assert client.post("/v1/skills/my-team/probe/run", json={"mode": "echo"}).status_code == 200
        yield client


def run(client: httpx.Client, body: Any, skill: str = "probe") -> httpx.Response:
    return client.post(f"/v1/skills/my-team/{skill}/run", json=body)


def test_health_is_ok(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.text == "ok"


def test_lists_wasm_files_only_sorted(client: httpx.Client) -> None:
    response = client.get("/v1/skills")
    assert response.status_code == 200
    assert response.json() == ["my-team/probe", "my-team/streamer"]


def test_echo_returns_the_skill_output(client: httpx.Client) -> None:
    response = run(client, {"mode": "echo", "payload": {"name": "Homer", "n": [1, 2.5, None]}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"result": {"name": "Homer", "n": [1, 2.5, None]}}


def test_metadata_of_a_function_skill(client: httpx.Client) -> None:
    response = client.get("/v1/skills/my-team/probe/metadata")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["description", "version", "skill_type", "input_schema", "output_schema"]
    assert body["description"] == "A probe skill for the engine's tests."
    assert body["version"] == "0.3"
    assert body["skill_type"] == "function"
    assert body["input_schema"]["required"] == ["mode"]
    assert body["output_schema"]["title"] == "Output"


def test_metadata_of_a_message_stream_skill(client: httpx.Client) -> None:
    response = client.get("/v1/skills/my-team/streamer/metadata")
    assert response.status_code == 200
    assert response.json() == {
        "description": None,
        "version": None,
        "skill_type": "message_stream",
        "input_schema": None,
        "output_schema": None,
    }


def test_stream_skill_via_run_is_rejected(client: httpx.Client) -> None:
    response = run(client, {}, skill="streamer")
    assert response.status_code == 400
    assert response.text == (
        "The skill is designed to stream output. Please invoke it via the /message-stream endpoint."
    )


@pytest.mark.parametrize("path", ["/v1/skills/my-team/nope/run", "/v1/skills/other/probe/run"])
def test_unknown_skill_or_namespace(client: httpx.Client, path: str) -> None:
    response = client.post(path, json={})
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == NOT_FOUND


def test_metadata_of_unknown_skill(client: httpx.Client) -> None:
    response = client.get("/v1/skills/my-team/README/metadata")
    assert response.status_code == 400
    assert response.text == NOT_FOUND


def test_invalid_namespace_wins_over_a_bad_body(client: httpx.Client) -> None:
    response = client.post(
        "/v1/skills/Bad_Namespace/probe/run", content=b"{", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 400
    assert response.text == (
        "Invalid URL: Invalid namespace `Bad_Namespace`. Namespaces must be between 1 and 64 characters long "
        "and must follow the pattern `^[a-z0-9]+(-[a-z0-9]+)*$`"
    )


def test_guest_internal_error(client: httpx.Client) -> None:
    response = run(client, {"mode": "raise", "text": "boom"})
    assert response.status_code == 400
    assert response.text.startswith(USER_CODE_PREFIX)
    assert "ValueError: I never expect to finish: boom" in response.text


def test_guest_invalid_input(client: httpx.Client) -> None:
    response = run(client, 42)
    assert response.status_code == 400
    assert response.text.startswith("The skill had trouble interpreting the input:\n\n")
    assert "validation error for Input" in response.text


def test_output_that_is_not_json(client: httpx.Client) -> None:
    response = run(client, {"mode": "invalid-output"})
    assert response.status_code == 500
    assert response.text.startswith(
        "The skill returned an output the Kernel could not interpret. This hints to a bug in the skill. "
        "Please contact its developer. Caused by: \n\n"
    )


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/xml"])
def test_wrong_or_missing_content_type(client: httpx.Client, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post("/v1/skills/my-team/probe/run", content=b"{}", headers=headers)
    assert response.status_code == 415
    assert response.text == "Expected request with `Content-Type: application/json`"


def test_json_suffix_content_type_is_accepted(client: httpx.Client) -> None:
    response = client.post(
        "/v1/skills/my-team/probe/run",
        content=b'{"mode":"echo","payload":7}',
        headers={"content-type": "application/vnd.api+json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"result": 7}


def test_malformed_json(client: httpx.Client) -> None:
    response = client.post(
        "/v1/skills/my-team/probe/run", content=b'{"mode": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.text.startswith("Failed to parse the request body as JSON: ")


def test_body_over_50_mib(client: httpx.Client) -> None:
    body = b'"' + b"x" * (50 * 1024 * 1024) + b'"'
    response = client.post(
        "/v1/skills/my-team/probe/run", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.text == "Failed to buffer the request body: length limit exceeded"


def test_unknown_path_is_404_with_empty_body(client: httpx.Client) -> None:
    response = client.get("/v2/whatever")
    assert response.status_code == 404
    assert response.content == b""


def test_wrong_method_is_405_with_empty_body(client: httpx.Client) -> None:
    response = client.get("/v1/skills/my-team/probe/run")
    assert response.status_code == 405
    assert response.content == b""


def test_non_bearer_authorization_header(client: httpx.Client) -> None:
    response = client.post(
        "/v1/skills/my-team/probe/run", json={"mode": "echo"}, headers={"authorization": "Basic eHl6"}
    )
    assert response.status_code == 400
    assert response.text == "Header of type `authorization` was invalid"


def test_chat_reaches_the_backend_with_the_configured_token(
    client: httpx.Client, openai: tuple[OpenAIServer, str]
) -> None:
    backend, _ = openai
    before = len(backend.requests)
    response = client.post(
        "/v1/skills/my-team/probe/run",
        json={"mode": "chat", "text": "Say Homer", "n": 12, "model": "llama-test"},
        headers={"authorization": "Bearer caller-token"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "echo: Say Homer"}
    sent = backend.requests[before:]
    assert len(sent) == 1
    assert sent[0]["path"] == "/v1/chat/completions"
    assert sent[0]["headers"]["authorization"] == f"Bearer {TOKEN}"  # never the caller's token
    assert sent[0]["body"] == {
        "model": "llama-test",
        "messages": [{"role": "user", "content": "Say Homer"}],
        "max_tokens": 12,
    }


def test_chat_concurrent_returns_results_in_request_order(client: httpx.Client) -> None:
    response = run(client, {"mode": "chat_concurrent", "text": "q", "n": 5})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": [f"echo: q {i}" for i in range(5)]}


def test_complete_uses_the_completions_endpoint(
    client: httpx.Client, openai: tuple[OpenAIServer, str]
) -> None:
    backend, _ = openai
    before = len(backend.requests)
    response = run(client, {"mode": "complete", "text": "Once upon", "n": 16, "model": "llama-test"})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": " completed: Once upon"}
    sent = backend.requests[before:]
    assert [r["path"] for r in sent] == ["/v1/completions"]
    body = sent[0]["body"]
    assert body["model"] == "llama-test"
    assert body["prompt"] == "Once upon"
    assert body["max_tokens"] == 16
    assert body["stop"] == ["\n"]
    assert sent[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


def test_backend_failure_is_a_runtime_error_with_the_drivers_message(client: httpx.Client) -> None:
    response = run(client, {"mode": "chat", "text": "x", "model": "fail-500"})
    assert response.status_code == 503
    assert response.text.startswith(SERVER_ERROR_PREFIX)
    assert "backend exploded" in response.text


def test_unknown_model(client: httpx.Client) -> None:
    response = run(client, {"mode": "chat", "text": "x", "model": "unknown-model"})
    assert response.status_code == 503
    assert response.text == SERVER_ERROR_PREFIX + (
        "The Skill tried to access a model that was not found. Please check the provided model name. "
        "You can query the list of available models at the `models` endpoint of the inference API. "
        "If you believe the model should be available, contact the operator of your PhariaAI instance."
    )


def test_explain_is_not_supported_on_the_openai_backend(client: httpx.Client) -> None:
    body = [{"prompt": "Say hi", "target": " hi", "model": "m", "granularity": "auto"}]
    response = client.post("/csi/v1/explain", json=body)
    assert response.status_code == 500
    assert response.text == (
        "Something went wrong: Inference backend is currently configured to an OpenAI compatible one. For "
        "this, we only support chat requests. For other request types, please ask your operator to configure "
        "the inference backend to use the Aleph Alpha inference backend."
    )


def test_chunking_counts_characters_on_the_openai_backend(client: httpx.Client) -> None:
    assert run(client, {"mode": "chunk", "text": "123456"}).json() == {"result": ["123", "456"]}


def test_skill_sees_no_files_env_or_network(client: httpx.Client, engine: EngineProcess) -> None:
    assert run(client, {"mode": "file", "text": "/etc/passwd"}).json() == {
        "result": {"error": "FileNotFoundError"}
    }
    probe_file = engine.workdir / "escaped.txt"
    assert run(client, {"mode": "write_file", "text": str(probe_file)}).json() == {
        "result": {"error": "FileNotFoundError"}
    }
    assert not probe_file.exists()
    env = run(client, {"mode": "env"}).json()["result"]
    assert env == {"environ": {}, "cwd": "/"}
    assert run(client, {"mode": "socket", "n": engine.port}).json() == {
        "result": {"error": "PermissionError"}
    }


def test_skill_output_goes_to_the_engine_log_with_the_skill_name(
    client: httpx.Client, engine: EngineProcess
) -> None:
    assert run(client, {"mode": "print", "text": "marker-7f3a", "n": 2}).status_code == 200
    deadline = time.monotonic() + 5
    while "marker-7f3a 1" not in engine.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in engine.logs().splitlines() if "marker-7f3a" in line]
    assert len(lines) == 2
    assert all("skill stdout" in line for line in lines)


def test_32_chats_with_a_slow_backend_overlap(client: httpx.Client) -> None:
    """Overlap, not speed: 32 calls to a 1 s backend finish in well under half the serial 32 s."""

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=60) as aclient:
            calls = [
                aclient.post(
                    "/v1/skills/my-team/probe/run",
                    json={"mode": "chat", "text": f"n{i}", "model": "slow-1"},
                )
                for i in range(32)
            ]
            return await asyncio.gather(*calls)

    started = time.monotonic()
    responses = asyncio.run(burst())
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 32
    assert [r.json()["result"] for r in responses] == [f"echo: n{i}" for i in range(32)]
    assert elapsed < 16, f"32 overlapping 1 s calls took {elapsed:.1f} s"


def test_many_concurrent_failing_and_succeeding_calls_each_get_their_own_result(client: httpx.Client) -> None:
    """Stress for the wasmtime-py thread-safety fixes: every invocation sees its own outcome."""

    async def burst() -> list[tuple[int, httpx.Response]]:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=60) as aclient:

            async def one(i: int) -> tuple[int, httpx.Response]:
                kind = i % 3
                if kind == 0:
                    body = {"mode": "chat", "text": f"ok{i}"}
                elif kind == 1:
                    body = {"mode": "chat", "text": f"bad{i}", "model": "fail-500"}
                else:
                    body = {"mode": "raise", "text": f"raise{i}"}
                return i, await aclient.post("/v1/skills/my-team/probe/run", json=body)

            return await asyncio.gather(*(one(i) for i in range(60)))

    for i, response in asyncio.run(burst()):
        kind = i % 3
        if kind == 0:
            assert response.status_code == 200
            assert response.json() == {"result": f"echo: ok{i}"}
        elif kind == 1:
            assert response.status_code == 503
            assert "backend exploded" in response.text
        else:
            assert response.status_code == 400
            assert f"I never expect to finish: raise{i}" in response.text


def test_directory_changes_are_picked_up_live(client: httpx.Client, engine: EngineProcess) -> None:
    directory = Path(engine.env["NAMESPACES__MY_TEAM__DIRECTORY"])
    shutil.copy(directory / "probe.wasm", directory / "later.wasm")
    wait_for(lambda: "my-team/later" in client.get("/v1/skills").json())
    assert run(client, {"mode": "echo", "payload": "hi"}, skill="later").json() == {"result": "hi"}

    # Replacing the file evicts the cached component: the new one (a stream skill) is served.
    replacement = directory / "later.tmp"
    shutil.copy(directory / "streamer.wasm", replacement)
    replacement.replace(directory / "later.wasm")
    wait_for(lambda: "designed to stream output" in run(client, {}, skill="later").text)

    (directory / "later.wasm").unlink()
    wait_for(lambda: "my-team/later" not in client.get("/v1/skills").json())
    assert run(client, {}, skill="later").text == NOT_FOUND


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_input_reaches_the_skill_as_compact_json(client: httpx.Client) -> None:
    body = b'{ "mode" : "echo", "payload" : { "a" : [1, 2] } }'
    response = client.post(
        "/v1/skills/my-team/probe/run", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.content == json.dumps({"result": {"a": [1, 2]}}, separators=(",", ":")).encode()


def test_missing_directory_marks_the_namespace_misconfigured(
    client: httpx.Client, engine: EngineProcess
) -> None:
    missing = engine.workdir / "missing"
    response = run_in(client, "ghost", "anything")
    assert response.status_code == 500
    assert response.text == (
        "The skill could not be executed to completion, the namespace 'ghost' is misconfigured. If you are "
        "the developer who configured the skill, you should probably fix this error. If you are not, there "
        "is nothing you can do, until the developer who maintains the list of skills to be served, fixes "
        "this. Original Syntax error:\n\n"
        f"The directory to watch '\"{missing}\"' is not a directory."
    )
    # The next good pass clears the error.
    missing.mkdir()
    wait_for(lambda: run_in(client, "ghost", "anything").status_code == 400)
    assert run_in(client, "ghost", "anything").text == NOT_FOUND


def run_in(client: httpx.Client, namespace: str, skill: str) -> httpx.Response:
    return client.post(f"/v1/skills/{namespace}/{skill}/run", json={})
