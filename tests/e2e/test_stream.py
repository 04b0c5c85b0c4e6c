"""`/message-stream`, CSI streams, native tools and the built-in `test-beta` skills, through real HTTP."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess, engine_with_skills
from tests.support.openai_server import OpenAIServer


def parse_sse(body: bytes) -> list[tuple[str, Any]]:
    """Parses with the SDK's strictness: `event:` line, one `data:` line, blank line; nothing else."""
    text = body.decode()
    assert "\r" not in text
    if not text:
        return []
    assert text.endswith("\n\n")
    events = []
    for block in text[:-2].split("\n\n"):
        lines = block.split("\n")
        assert len(lines) == 2, block
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    streamer_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    _, url = openai
    with engine_with_skills(
        tmp_path_factory.mktemp("engine-stream"),
        {"probe": probe_wasm, "streamer": streamer_wasm},
        {
            "NAMESPACES__MY_TEAM__NATIVE_TOOLS": '["add", "saboteur"]',
            "OPENAI_INFERENCE__URL": url,
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
        },
    ) as process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        yield client


def stream(client: httpx.Client, skill: str, body: Any, namespace: str = "my-team") -> httpx.Response:
    return client.post(f"/v1/skills/{namespace}/{skill}/message-stream", json=body)


def test_hello_matches_the_reference_byte_for_byte(client: httpx.Client) -> None:
    response = stream(client, "hello", "Homer", namespace="test-beta")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    expected = 'event: message\ndata: {"type":"begin"}\n\n'
    for letter in "Hello":
        expected += f'event: message\ndata: {{"type":"append","text":"{letter}"}}\n\n'
    expected += 'event: message\ndata: {"type":"end","payload":null}\n\n'
    assert response.text == expected


def test_builtins_on_run(client: httpx.Client) -> None:
    hello = client.post("/v1/skills/test-beta/hello/run", json="x")
    assert hello.status_code == 400
    assert hello.text.endswith("Error reported by Skill:\n\nI am a dummy Skill")
    saboteur = client.post("/v1/skills/test-beta/saboteur/run", json="x")
    assert saboteur.status_code == 400
    assert "designed to stream output" in saboteur.text


def test_saboteur_streams_one_error_event(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "saboteur", {}, namespace="test-beta").content)
    assert len(events) == 1
    assert events[0][0] == "error"
    assert events[0][1]["message"].endswith("Error reported by Skill:\n\nSkill is a saboteur")


def test_tool_caller(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "tool_caller", {}, namespace="test-beta").content)
    assert events == [
        ("tool", {"type": "begin", "name": "add"}),
        ("tool", {"type": "end", "name": "add"}),
        ("message", {"type": "begin"}),
        ("message", {"type": "append", "text": "The result of calling the add tool for a=1 and b=2 is: 3"}),
        ("message", {"type": "end", "payload": None}),
    ]


def test_tell_me_a_joke_forwards_the_chat_stream(
    client: httpx.Client, openai: tuple[OpenAIServer, str]
) -> None:
    backend, _ = openai
    events = parse_sse(stream(client, "tell_me_a_joke", {}, namespace="test-beta").content)
    assert events[0] == ("message", {"type": "begin"})
    text = "".join(data["text"] for kind, data in events if data.get("type") == "append")
    assert text == "echo: Tell me a joke!"
    assert events[-1] == ("message", {"type": "end", "payload": "Stop"})
    chats = [r for r in backend.requests if r["path"] == "/v1/chat/completions"]
    sent = [r for r in chats if r["body"]["messages"][-1]["content"] == "Tell me a joke!"][-1]
    assert sent["body"]["model"] == "llama-3.1-8b-instruct"
    assert sent["body"]["max_tokens"] == 300
    assert sent["body"]["stream"] is True
    assert sent["body"]["stream_options"] == {"include_usage": True}


def test_wasm_stream_skill_with_several_messages(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "streamer", {"mode": "messages", "text": "a b"}).content)
    assert events == [
        ("message", {"type": "begin"}),
        ("message", {"type": "append", "text": "a"}),
        ("message", {"type": "append", "text": "b"}),
        ("message", {"type": "end", "payload": {"note": "first"}}),
        ("message", {"type": "begin"}),
        ("message", {"type": "append", "text": "second"}),
        ("message", {"type": "end", "payload": None}),
    ]


def test_forwarding_a_chat_stream(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "streamer", {"mode": "chat_stream", "text": "hi there"}).content)
    assert events[0] == ("message", {"type": "begin"})
    assert "".join(d["text"] for _, d in events if d.get("type") == "append") == "echo: hi there"
    assert events[-1] == ("message", {"type": "end", "payload": None})


def test_forwarding_a_completion_stream(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "streamer", {"mode": "completion_stream", "text": "x y"}).content)
    assert "".join(d["text"] for _, d in events if d.get("type") == "append") == " completed: x y"


def test_state_machine_violation(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "streamer", {"mode": "end_without_begin"}).content)
    assert events == [
        (
            "error",
            {
                "message": "The skill inserted a message end into the stream, which has not been preceded "
                "by a message begin. This is a bug in the skill. Please contact its developer."
            },
        )
    ]


def test_failure_mid_stream(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "streamer", {"mode": "raise"}).content)
    assert events[:2] == [("message", {"type": "begin"}), ("message", {"type": "append", "text": "partial"})]
    assert events[2][0] == "error"
    assert "ValueError: failure mid-stream" in events[2][1]["message"]
    assert len(events) == 3


def test_tool_events_and_tool_errors(client: httpx.Client) -> None:
    events = parse_sse(stream(client, "streamer", {"mode": "tool"}).content)
    assert events == [
        ("message", {"type": "begin"}),
        ("tool", {"type": "begin", "name": "add"}),
        ("tool", {"type": "begin", "name": "saboteur"}),
        ("tool", {"type": "end", "name": "add"}),
        ("tool", {"type": "error", "name": "saboteur", "message": "Out of cheese."}),
        ("message", {"type": "append", "text": "42"}),
        ("message", {"type": "append", "text": "error: Out of cheese."}),
        ("message", {"type": "end", "payload": None}),
    ]


def test_function_skill_on_message_stream(client: httpx.Client) -> None:
    response = stream(client, "probe", {"mode": "echo"})
    assert response.status_code == 200
    assert parse_sse(response.content) == [
        (
            "error",
            {
                "message": "The skill is designed to be executed as a function. Please invoke it via the "
                "/run endpoint."
            },
        )
    ]


def test_unknown_skill_on_message_stream_is_an_error_event(client: httpx.Client) -> None:
    response = stream(client, "nope", {})
    assert response.status_code == 200
    events = parse_sse(response.content)
    assert events[0][0] == "error"
    assert events[0][1]["message"].startswith("Sorry, we could not find the skill you requested")


def test_errors_before_the_stream_are_plain_responses(client: httpx.Client) -> None:
    response = client.post(
        "/v1/skills/my-team/streamer/message-stream",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.text.startswith("Failed to parse the request body as JSON")


def test_tools_listing(client: httpx.Client) -> None:
    beta = client.get("/v1/tools/test-beta")
    assert beta.status_code == 200
    assert [t["name"] for t in beta.json()] == ["add", "saboteur", "subtract"]
    assert beta.json()[0] == {
        "name": "add",
        "description": "Add two numbers",
        "input_schema": {
            "properties": {"a": {"title": "A", "type": "integer"}, "b": {"title": "B", "type": "integer"}},
            "required": ["a", "b"],
            "title": "addArguments",
            "type": "object",
        },
    }
    assert [t["name"] for t in client.get("/v1/tools/my-team").json()] == ["add", "saboteur"]
    unknown = client.get("/v1/tools/unknown")
    assert unknown.status_code == 404
    assert unknown.json() == "Namespace 'unknown' not found"


def test_items_reach_the_client_before_the_backend_answers(
    engine: EngineProcess, openai: tuple[OpenAIServer, str]
) -> None:
    backend, _ = openai
    backend.gate.clear()
    received: list[tuple[str, Any]] = []
    try:
        with (
            httpx.Client(base_url=engine.url, timeout=60) as client,
            client.stream(
                "POST",
                "/v1/skills/my-team/streamer/message-stream",
                json={"mode": "write_then_chat", "model": "gated", "text": "q"},
            ) as response,
        ):
            buffer = b""
            for chunk in response.iter_raw():
                buffer += chunk
                if buffer.count(b"\n\n") >= 2 and not received:
                    received = parse_sse(buffer[: buffer.rindex(b"\n\n") + 2])
                    # The backend still holds the skill's chat call: nothing was buffered until the end.
                    assert not backend.gate.is_set()
                    backend.gate.set()
            events = parse_sse(buffer)
    finally:
        backend.gate.set()
    assert received[:2] == [
        ("message", {"type": "begin"}),
        ("message", {"type": "append", "text": "thinking"}),
    ]
    assert events[-2:] == [
        ("message", {"type": "append", "text": "echo: q"}),
        ("message", {"type": "end", "payload": None}),
    ]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_slow_client_slows_the_skill_instead_of_growing_memory(engine: EngineProcess) -> None:
    """The skill writes 96 MiB; a client that stops reading must hold it back at the bounded queue."""
    assert engine.process is not None
    blocks = 1536  # of 64 KiB each
    with (
        httpx.Client(base_url=engine.url, timeout=120) as client,
        client.stream(
            "POST",
            "/v1/skills/my-team/streamer/message-stream",
            json={"mode": "flood", "text": str(blocks)},
        ) as response,
    ):
        chunks = response.iter_raw()
        received = [next(chunks)]
        before = rss_bytes(engine.process.pid)
        time.sleep(3)  # an unbounded buffer would now hold most of the skill's output
        grown = rss_bytes(engine.process.pid) - before
        received.extend(chunks)
    assert grown < 32 * 1024 * 1024, f"the engine buffered {grown} bytes for a client that did not read"
    events = parse_sse(b"".join(received))
    assert len(events) == blocks + 2
    assert events[-1] == ("message", {"type": "end", "payload": None})
    assert all(event == ("message", {"type": "append", "text": "x" * 65536}) for event in events[1:-1])


def in_flight(engine: EngineProcess) -> float:
    """`kernel_skill_invocations_in_flight` from the engine's metrics listener."""
    for line in httpx.get(engine.metrics_url, timeout=10).text.splitlines():
        if line.startswith("kernel_skill_invocations_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no in-flight gauge")


def test_client_disconnect_cancels_the_skill_and_closes_the_upstream_stream(
    engine: EngineProcess, openai: tuple[OpenAIServer, str]
) -> None:
    backend, _ = openai
    closed_before = backend.closed_streams
    running = 0.0
    with (
        httpx.Client(base_url=engine.url, timeout=60) as client,
        client.stream(
            "POST",
            "/v1/skills/my-team/streamer/message-stream",
            json={"mode": "chat_stream", "model": "endless"},
        ) as response,
    ):
        seen = b""
        for chunk in response.iter_raw():
            seen += chunk
            if seen.count(b"append") >= 3:
                running = in_flight(engine)
                break  # leaving the block closes the connection mid-stream
    assert running == 1
    deadline = time.monotonic() + 15
    while backend.closed_streams == closed_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.closed_streams > closed_before, "the upstream stream was left open"
    deadline = time.monotonic() + 15
    while "message stream of my-team/streamer cancelled" not in engine.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "message stream of my-team/streamer cancelled" in engine.logs()
    # The abandoned invocation ends: the in-flight gauge an autoscaler reads goes back to zero.
    deadline = time.monotonic() + 15
    while in_flight(engine) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_flight(engine) == 0


def test_a_client_gone_right_after_its_request_stops_the_skill(
    engine: EngineProcess, openai: tuple[OpenAIServer, str]
) -> None:
    """A client that leaves right after sending its request (its response never read) leaves no skill
    running and no upstream stream open."""
    backend, _ = openai
    marker = "message stream of my-team/streamer cancelled"
    cancelled_before = engine.logs().count(marker)
    open_before = backend.open_streams - backend.closed_streams
    host, port = engine.url.removeprefix("http://").split(":")
    body = json.dumps({"mode": "chat_stream", "model": "endless"}).encode()
    head = f"host: {host}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    request = b"POST /v1/skills/my-team/streamer/message-stream HTTP/1.1\r\n" + head.encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
    # Depending on when the engine sees the disconnect, the skill is cancelled after it started (logged) or
    # never starts; an "endless" upstream stream left running would keep the gauge at 1 either way.
    deadline = time.monotonic() + 3
    while engine.logs().count(marker) == cancelled_before and time.monotonic() < deadline:
        time.sleep(0.1)
    deadline = time.monotonic() + 15
    while in_flight(engine) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_flight(engine) == 0

    def still_open() -> int:
        return backend.open_streams - backend.closed_streams - open_before

    deadline = time.monotonic() + 15  # the backend sees the closed connection at its next write
    while still_open() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert still_open() == 0, "an upstream stream was left open"


def test_client_disconnect_cancels_a_run(engine: EngineProcess, openai: tuple[OpenAIServer, str]) -> None:
    backend, _ = openai
    backend.gate.clear()
    try:
        with httpx.Client(base_url=engine.url, timeout=1.5) as client, pytest.raises(httpx.ReadTimeout):
            client.post("/v1/skills/my-team/probe/run", json={"mode": "chat", "model": "gated", "text": "x"})
        marker = "client disconnected: invocation of /v1/skills/my-team/probe/run cancelled"
        deadline = time.monotonic() + 15
        while marker not in engine.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker in engine.logs()
        assert "invocation cancelled" in engine.logs()
    finally:
        backend.gate.set()
