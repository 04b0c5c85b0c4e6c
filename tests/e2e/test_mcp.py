"""MCP tools through the engine: real MCP servers (Streamable HTTP with SSE and with JSON answers, and the
older HTTP+SSE transport), an SDK-built skill that lists and calls their tools, restarts and removals."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_stream import parse_sse
from tests.support.engine import EngineProcess, WarmUp, running
from tests.support.mcp_servers import McpServerProcess
from tests.support.openai_server import OpenAIServer
from tests.support.skills import build_skill

MCP_TOOLS = ["add", "picture", "saboteur", "sleep", "subtract", "whoami"]


@pytest.fixture(scope="module")
def mcp_user_wasm() -> Path:
    return build_skill("mcp_user")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, McpServerProcess]]:
    started = {
        "alpha": McpServerProcess("streamable", "alpha"),  # answers as SSE streams
        "beta": McpServerProcess("streamable", "beta", json_response=True),
        "gamma": McpServerProcess("sse", "gamma"),  # the older HTTP+SSE transport
        "secure": McpServerProcess("streamable", "secure", require_token=True),  # 401 without a token
    }
    try:
        for server in started.values():
            server.start()
        yield started
    finally:
        for server in started.values():
            server.stop()


def engine_env(
    workdir: Path, skills: dict[str, Path], namespaces: dict[str, dict[str, str]], extra: dict[str, str]
) -> dict[str, str]:
    env = dict(extra)
    for namespace, keys in namespaces.items():
        directory = workdir / namespace
        directory.mkdir(parents=True, exist_ok=True)
        for name, component in skills.items():
            shutil.copy(component, directory / f"{name}.wasm")
        prefix = f"NAMESPACES__{namespace.upper().replace('-', '_')}__"
        env[f"{prefix}DIRECTORY"] = str(directory)
        env.update({prefix + key: value for key, value in keys.items()})
    return env


def quoted(*urls: str) -> str:
    return "[" + ", ".join(f'"{u}"' for u in urls) + "]"


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    servers: dict[str, McpServerProcess],
    mcp_user_wasm: Path,
    streamer_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    alpha, beta, gamma = servers["alpha"], servers["beta"], servers["gamma"]
    workdir = tmp_path_factory.mktemp("engine-mcp")
    env = engine_env(
        workdir,
        {"mcp_user": mcp_user_wasm, "streamer": streamer_wasm},
        {
            # beta comes first: it wins the name clashes among MCP servers (add, sleep, whoami, ...).
            "tools": {
                "MCP_SERVERS": quoted(beta.url, alpha.url, gamma.url),
                "MCP_FORWARD_TOKEN": quoted(beta.url),
                "NATIVE_TOOLS": '["subtract"]',
            },
            "other": {"MCP_SERVERS": quoted(gamma.url)},
            "secure": {
                "MCP_SERVERS": quoted(servers["secure"].url),
                "MCP_FORWARD_TOKEN": quoted(servers["secure"].url),
            },
            "plain": {},
            # Policy: of its two servers only alpha may be used; beta (listed first) owns the shared names.
            "governed": {
                "MCP_SERVERS": quoted(beta.url, alpha.url),
                "POLICY__MCP_SERVERS": quoted(alpha.url),
            },
        },
        {
            # A namespace restricts MCP servers: CSI over HTTP needs the default policy to open them.
            "POLICY__MCP_SERVERS": '["*"]',
            "OPENAI_INFERENCE__URL": openai[1],
            "OPENAI_INFERENCE__TOKEN": "tok",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "MCP_CALL_TIMEOUT": "3s",
            "MCP_REFRESH_INTERVAL": "1s",
        },
    )
    warm = [WarmUp.metadata("tools", "mcp_user"), WarmUp.metadata("tools", "streamer")]
    with running(EngineProcess(workdir, env), warm, timeout=180) as process:  # MCP listings first: slow
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120) as client:
        yield client


def run(client: httpx.Client, body: dict[str, Any], namespace: str = "tools", **kwargs: Any) -> Any:
    response = client.post(f"/v1/skills/{namespace}/mcp_user/run", json=body, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def invoke(client: httpx.Client, calls: list[dict[str, Any]], namespace: str = "tools", **kwargs: Any) -> Any:
    return run(client, {"mode": "invoke", "calls": calls}, namespace, **kwargs)


def tool_names(client: httpx.Client, namespace: str, **kwargs: Any) -> list[str]:
    response = client.get(f"/v1/tools/{namespace}", **kwargs)
    assert response.status_code == 200, response.text
    return [t["name"] for t in response.json()]


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_tools_of_all_servers_are_listed_and_native_tools_win(client: httpx.Client) -> None:
    tools = client.get("/v1/tools/tools").json()
    assert [t["name"] for t in tools] == sorted([*MCP_TOOLS, "alpha_only", "beta_only", "gamma_only"])
    by_name = {t["name"]: t for t in tools}
    assert by_name["add"] == {
        "name": "add",
        "description": "Add two numbers",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"title": "A", "type": "integer"}, "b": {"title": "B", "type": "integer"}},
            "required": ["a", "b"],
            "title": "addArguments",
        },
    }
    assert by_name["subtract"]["description"] == "Subtract two numbers"  # native, not the MCP one
    assert tool_names(client, "other") == sorted([*MCP_TOOLS, "gamma_only"])
    assert client.get("/v1/tools/plain").json() == []


def test_a_skill_lists_the_tools_of_its_own_namespace(client: httpx.Client) -> None:
    listed = run(client, {"mode": "list"})
    assert [t["name"] for t in listed] == tool_names(client, "tools")
    assert {t["name"]: t["description"] for t in listed}["saboteur"] == "I have ran out of cheese."
    assert [t["name"] for t in run(client, {"mode": "list"}, "other")] == tool_names(client, "other")
    assert run(client, {"mode": "list"}, "plain") == []


def test_invocations_run_concurrently_and_answer_in_order(client: httpx.Client) -> None:
    started = time.monotonic()
    results = invoke(
        client,
        [
            {"name": "sleep", "args": {"seconds": 1.5}},
            {"name": "add", "args": {"a": 1, "b": 2}},
            {"name": "saboteur"},
            {"name": "alpha_only"},
            {"name": "sleep", "args": {"seconds": 1.5}},
            {"name": "gamma_only"},
            {"name": "nope"},
            {"name": "subtract", "args": {"a": 5, "b": 3}},
            {"name": "sleep", "args": {"seconds": 1.5}},
        ],
    )
    elapsed = time.monotonic() - started
    slept = {"text": "slept 1.5", "contents": ["slept 1.5"]}
    assert results == [
        slept,
        {"text": "3", "contents": ["3"]},
        {"error": "Error executing tool saboteur: Out of cheese."},
        {"text": "alpha", "contents": ["alpha"]},
        slept,
        {"text": "gamma", "contents": ["gamma"]},
        {"error": "Tool nope not found on any server."},
        {"text": "2", "contents": ["2"]},  # the native subtract, not the MCP server's `mcp:2`
        slept,
    ]
    assert elapsed < 4.5, f"three 1.5 s sleeps took {elapsed:.1f} s: not concurrent"


def test_a_tool_error_raises_in_the_skill_only_when_it_asks_for_one_result(client: httpx.Client) -> None:
    result = run(client, {"mode": "invoke_one", "calls": [{"name": "saboteur"}]})
    assert result == {"raised": "Error executing tool saboteur: Out of cheese."}


def test_a_hanging_tool_times_out_into_an_error_string(client: httpx.Client) -> None:
    started = time.monotonic()
    results = invoke(client, [{"name": "sleep", "args": {"seconds": 30}}, {"name": "add", "args": {"a": 2}}])
    assert results[0] == {
        "error": "The tool call could not be executed, original error: no answer within 3 s"
    }
    assert results[1]["error"].startswith("Error executing tool add")  # b is missing: the server says so
    assert time.monotonic() - started < 15
    assert invoke(client, [{"name": "beta_only"}]) == [{"text": "beta", "contents": ["beta"]}]


def test_the_callers_token_reaches_only_servers_marked_for_it(client: httpx.Client) -> None:
    secret = {"Authorization": "Bearer secret-1"}
    assert invoke(client, [{"name": "whoami"}], headers=secret) == [
        {"text": "Bearer secret-1", "contents": ["Bearer secret-1"]}
    ]
    assert invoke(client, [{"name": "whoami"}]) == [{"text": "anonymous", "contents": ["anonymous"]}]
    # `other` reaches gamma, which is not marked: it never sees the token.
    assert invoke(client, [{"name": "whoami"}], "other", headers=secret) == [
        {"text": "anonymous", "contents": ["anonymous"]}
    ]


def test_a_server_that_wants_the_token_is_listed_and_called_with_it(client: httpx.Client) -> None:
    secret = {"Authorization": "Bearer secret-2"}
    assert tool_names(client, "secure") == []  # it answers 401 to anonymous listings
    expected = sorted([*MCP_TOOLS, "secure_only"])
    assert tool_names(client, "secure", headers=secret) == expected
    assert [t["name"] for t in run(client, {"mode": "list"}, "secure", headers=secret)] == expected
    assert invoke(client, [{"name": "whoami"}, {"name": "secure_only"}], "secure", headers=secret) == [
        {"text": "Bearer secret-2", "contents": ["Bearer secret-2"]},
        {"text": "secure", "contents": ["secure"]},
    ]
    assert invoke(client, [{"name": "secure_only"}], "secure") == [
        {"error": "Tool secure_only not found on any server."}
    ]


def test_mcp_tools_over_csi_http(client: httpx.Client) -> None:
    """What the SDK's dev tooling (`DevCsi`) calls: the same tools, the same token rules."""
    body = {
        "namespace": "secure",
        "requests": [
            {"name": "add", "arguments": [{"name": "a", "value": 1}, {"name": "b", "value": 2}]},
            {"name": "saboteur", "arguments": []},
            {"name": "whoami", "arguments": []},
        ],
    }
    secret = {"Authorization": "Bearer secret-3"}
    response = client.post("/csi/v1/invoke_tool", json=body, headers=secret)
    assert response.status_code == 200, response.text
    assert response.json() == [
        [{"type": "text", "text": "3"}],
        "Error executing tool saboteur: Out of cheese.",
        [{"type": "text", "text": "Bearer secret-3"}],
    ]
    listed = client.post("/csi/v1/list_tools", json={"namespace": "secure"}, headers=secret).json()
    assert [t["name"] for t in listed] == sorted([*MCP_TOOLS, "secure_only"])
    assert client.post("/csi/v1/list_tools", json={"namespace": "secure"}).json() == []


def test_the_mcp_servers_policy_hides_and_refuses_a_denied_server(
    client: httpx.Client, servers: dict[str, McpServerProcess]
) -> None:
    denied = f"The policy of namespace 'governed' does not allow the MCP server '{servers['beta'].url}'."
    # Listings: only alpha's tools; the names beta owns (it is listed first) are hidden, not taken from alpha.
    assert tool_names(client, "governed") == ["alpha_only"]
    listed = run(client, {"mode": "list"}, "governed")
    assert [t["name"] for t in listed] == ["alpha_only"]
    over_http = client.post("/csi/v1/list_tools", json={"namespace": "governed"})
    assert [t["name"] for t in over_http.json()] == ["alpha_only"]
    # The allowed server answers; a call to a denied server ends the invocation with 403.
    assert invoke(client, [{"name": "alpha_only"}], "governed") == [{"text": "alpha", "contents": ["alpha"]}]
    for name in ("beta_only", "add"):
        response = client.post(
            "/v1/skills/governed/mcp_user/run", json={"mode": "invoke", "calls": [{"name": name}]}
        )
        assert (response.status_code, response.text) == (403, denied)
    call = {"namespace": "governed", "requests": [{"name": "beta_only", "arguments": []}]}
    response = client.post("/csi/v1/invoke_tool", json=call)
    assert (response.status_code, response.text) == (403, denied)
    # Namespaces without a policy are unaffected.
    assert "beta_only" in tool_names(client, "tools")


def test_tool_events_of_mcp_tools_in_a_message_stream(client: httpx.Client) -> None:
    response = client.post("/v1/skills/other/streamer/message-stream", json={"mode": "tool"})
    events = parse_sse(response.content)
    assert events == [
        ("message", {"type": "begin"}),
        ("tool", {"type": "begin", "name": "add"}),
        ("tool", {"type": "begin", "name": "saboteur"}),
        ("tool", {"type": "end", "name": "add"}),
        (
            "tool",
            {"type": "error", "name": "saboteur", "message": "Error executing tool saboteur: Out of cheese."},
        ),
        ("message", {"type": "append", "text": "42"}),
        ("message", {"type": "append", "text": "error: Error executing tool saboteur: Out of cheese."}),
        ("message", {"type": "end", "payload": None}),
    ]


def test_the_sdk_tool_loop_calls_an_mcp_tool(client: httpx.Client, openai: tuple[OpenAIServer, str]) -> None:
    backend, _ = openai
    before = len(backend.requests)
    call = '{"type": "function", "function": {"name": "add", "parameters": {"a": 20, "b": 22}}}'
    answer = run(client, {"mode": "chat", "text": call, "tools": ["add"]})
    assert answer == 'echo: completed[stdout]:{"result": 42}[/stdout]'
    requests = [r["body"] for r in backend.requests[before:]]
    assert len(requests) == 2
    system = requests[0]["messages"][0]
    assert system["role"] == "system" and '"name": "add"' in system["content"]
    assert [m["role"] for m in requests[1]["messages"]] == ["system", "user", "assistant", "tool"]


def test_sessions_reconnect_after_servers_restart(
    client: httpx.Client, servers: dict[str, McpServerProcess]
) -> None:
    calls = [{"name": "alpha_only"}, {"name": "beta_only"}, {"name": "gamma_only"}]
    expected = [{"text": n, "contents": [n]} for n in ("alpha", "beta", "gamma")]
    assert invoke(client, calls) == expected
    # The stateful Streamable HTTP server forgets its sessions; the HTTP+SSE one drops its event stream.
    # (beta is restarted by the next test.)
    servers["alpha"].restart()
    servers["gamma"].restart()
    assert invoke(client, calls) == expected


def test_a_server_that_is_down_fails_its_calls_and_keeps_its_tools(
    client: httpx.Client, servers: dict[str, McpServerProcess]
) -> None:
    beta = servers["beta"]
    beta.kill()
    try:
        [result] = invoke(client, [{"name": "beta_only"}])
        assert result["error"].startswith("The tool call could not be executed, original error: ")
        time.sleep(1.5)  # a failed refresh keeps the last list
        assert "beta_only" in tool_names(client, "tools")
    finally:
        beta.start()
    assert invoke(client, [{"name": "beta_only"}]) == [{"text": "beta", "contents": ["beta"]}]


def test_tool_lists_are_refreshed(client: httpx.Client, servers: dict[str, McpServerProcess]) -> None:
    gamma = servers["gamma"]
    gamma.label = "delta"  # same URL, other tools
    gamma.restart()
    wait_for(lambda: "delta_only" in tool_names(client, "other"))
    assert "gamma_only" not in tool_names(client, "other")
    assert invoke(client, [{"name": "delta_only"}], "other") == [{"text": "delta", "contents": ["delta"]}]
    gamma.label = "gamma"
    gamma.restart()
    wait_for(lambda: "gamma_only" in tool_names(client, "other"))


def test_a_server_removed_from_the_configuration_is_gone(
    engine: EngineProcess, servers: dict[str, McpServerProcess]
) -> None:
    # With in-place configuration a change takes a restart: the same namespaces, gamma removed.
    env = dict(engine.env)
    env["NAMESPACES__TOOLS__MCP_SERVERS"] = quoted(servers["beta"].url, servers["alpha"].url)
    env["NAMESPACES__OTHER__MCP_SERVERS"] = "[]"
    engine.stop()
    restarted = EngineProcess(engine.workdir, {k: v for k, v in env.items() if k != "KERNEL_ADDRESS"})
    restarted.start()
    try:
        with httpx.Client(base_url=restarted.url, timeout=120) as client:
            assert "gamma_only" not in tool_names(client, "tools")
            assert "alpha_only" in tool_names(client, "tools")
            assert tool_names(client, "other") == []
            assert invoke(client, [{"name": "gamma_only"}], "other") == [
                {"error": "Tool gamma_only not found on any server."}
            ]
    finally:
        restarted.stop()
