"""`execute_python` against a live engine: the native tool through `/v1/tools`, the CSI over HTTP and an
SDK-built skill; hostile programs (each answered within its limit + 1 s while the engine keeps serving);
code mode calling a native and an MCP tool, traced as children of the execution; the agent example in
`examples/code_agent` against the loopback OpenAI-compatible server (a wrong program, then a right one)."""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess, WarmUp, running
from tests.support.mcp_servers import McpServerProcess
from tests.support.openai_server import OpenAIServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.skills import build_example, build_skill

LIMIT = 3.0
"""CODE_EXECUTION_TIMEOUT of the engine under test (seconds)."""
HEADERS = {"Authorization": "Bearer user-token"}


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01", trace_id


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[McpServerProcess]:
    server = McpServerProcess("streamable", "alpha").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory,
    compiled_cache: Path,
    mcp_server: McpServerProcess,
    receiver: OtlpReceiver,
    openai: tuple[OpenAIServer, str],
) -> Iterator[EngineProcess]:
    workdir = tmp_path_factory.mktemp("engine-code")
    directory = workdir / "agents"
    directory.mkdir()
    (directory / "mcp_user.wasm").write_bytes(build_skill("mcp_user").read_bytes())
    (directory / "code_agent.wasm").write_bytes(build_example("code_agent").read_bytes())
    (workdir / "plain").mkdir()
    env = {
        "NAMESPACES__AGENTS__DIRECTORY": str(directory),
        "NAMESPACES__AGENTS__NATIVE_TOOLS": '["add", "execute_python"]',
        "NAMESPACES__AGENTS__MCP_SERVERS": f'["{mcp_server.url}"]',
        "NAMESPACES__PLAIN__DIRECTORY": str(workdir / "plain"),
        "NAMESPACES__PLAIN__NATIVE_TOOLS": '["add"]',
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "OPENAI_INFERENCE__URL": openai[1],
        "OPENAI_INFERENCE__TOKEN": "tok",
        "CODE_EXECUTION_TIMEOUT": f"{LIMIT:g}s",
        "CODE_EXECUTION_MEMORY": "96MiB",
        "CODE_EXECUTION_OUTPUT_LIMIT": "1000",
        "OTEL_ENDPOINT": receiver.url,
        "OTEL_SAMPLING_RATIO": "0",
        "OTEL_GEN_AI_CONTENT_CAPTURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    # The sandbox is built and compiled in the background at start-up (minutes on a busy machine the first
    # time, then cached); the first call waits for it. The skills have compiled by then.
    warm = [
        WarmUp("/csi/v1/invoke_tool", invoke_body("1"), HEADERS),
        WarmUp.metadata("agents", "mcp_user", HEADERS),
        WarmUp.metadata("agents", "code_agent", HEADERS),
    ]
    # Imports alone take ~30 s on a loaded machine.
    with running(EngineProcess(workdir, env), warm, timeout=180, warm_timeout=1200) as process:
        yield process


@pytest.fixture(scope="module")
def client(engine: EngineProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.url, timeout=120, headers=HEADERS) as client:
        yield client


def invoke_body(code: str, input: Any = None, namespace: str = "agents") -> dict[str, Any]:
    arguments: list[dict[str, Any]] = [{"name": "code", "value": code}]
    if input is not None:
        arguments.append({"name": "input", "value": input})
    return {"namespace": namespace, "requests": [{"name": "execute_python", "arguments": arguments}]}


def execute(client: httpx.Client, code: str, input: Any = None, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
    """Runs `code` through the CSI over HTTP: (succeeded, the outcome JSON)."""
    response = client.post("/csi/v1/invoke_tool", json=invoke_body(code, input), **kwargs)
    assert response.status_code == 200, response.text
    [result] = response.json()
    if isinstance(result, str):  # a tool error: the same JSON shape, with `error` set
        return False, json.loads(result)
    [content] = result
    return True, json.loads(content["text"])


def test_listed_with_its_schema_only_where_enabled(client: httpx.Client) -> None:
    tools = {t["name"]: t for t in client.get("/v1/tools/agents").json()}
    assert {"add", "execute_python", "alpha_only"} <= tools.keys()
    schema = tools["execute_python"]["input_schema"]
    assert schema["required"] == ["code"]
    assert schema["properties"]["code"]["type"] == "string"
    assert "input" in schema["properties"]
    assert "sandbox" in tools["execute_python"]["description"]
    csi_listed = client.post("/csi/v1/list_tools", json={"namespace": "agents"}).json()
    assert "execute_python" in [t["name"] for t in csi_listed]
    assert [t["name"] for t in client.get("/v1/tools/plain").json()] == ["add"]
    response = client.post("/csi/v1/invoke_tool", json=invoke_body("1", namespace="plain"))
    assert response.json() == ["Tool execute_python not found on any server."]


def test_arithmetic_printing_and_final_expression(client: httpx.Client) -> None:
    assert execute(client, "6 * 7") == (True, {"stdout": "", "stderr": "", "result": 42, "error": None})
    ok, outcome = execute(
        client, "import sys\nprint('hello')\nprint('oops', file=sys.stderr)\nresult = [1, 2]"
    )
    assert ok
    assert (outcome["stdout"], outcome["stderr"], outcome["result"]) == ("hello\n", "oops\n", [1, 2])
    ok, outcome = execute(client, "sum(x['n'] for x in input)", input=[{"n": 1}, {"n": 2}])
    assert (ok, outcome["result"]) == (True, 3)
    ok, outcome = execute(client, "import statistics\nstatistics.median([3, 1, 2])")
    assert (ok, outcome["result"]) == (True, 2)
    ok, outcome = execute(client, "object()")  # not JSON: its repr
    assert ok and outcome["result"].startswith("<object object at")


def test_output_is_truncated_with_a_marker(client: httpx.Client) -> None:
    ok, outcome = execute(client, "print('x' * 5000)")
    assert ok
    assert outcome["stdout"] == "x" * 1000 + "\n[output truncated after 1000 characters]"


def test_syntax_error(client: httpx.Client) -> None:
    ok, outcome = execute(client, "def broken(:\n    pass")
    assert not ok
    assert outcome["error"]["type"] == "SyntaxError"
    assert 'File "<code>", line 1' in outcome["error"]["traceback"]


def test_exception_with_traceback(client: httpx.Client) -> None:
    ok, outcome = execute(client, "print('before')\ndef f(x):\n    return 1 / x\nf(0)")
    assert not ok
    assert outcome["stdout"] == "before\n"
    error = outcome["error"]
    assert (error["type"], error["message"]) == ("ZeroDivisionError", "division by zero")
    assert 'File "<code>", line 4, in <module>' in error["traceback"]
    assert 'File "<code>", line 3, in f\n    return 1 / x' in error["traceback"]
    assert error["traceback"].endswith("ZeroDivisionError: division by zero\n")


def test_bad_arguments_are_tool_errors(client: httpx.Client) -> None:
    body: Any = {"namespace": "agents", "requests": [{"name": "execute_python", "arguments": []}]}
    assert client.post("/csi/v1/invoke_tool", json=body).json() == ["Argument code not specified"]
    body["requests"][0]["arguments"] = [{"name": "code", "value": 5}]
    [error] = client.post("/csi/v1/invoke_tool", json=body).json()
    assert error == "Error deserializing argument code: expected a string, got int"


HOSTILE = {
    "busy loop": ("while True:\n    pass", "TimeoutError"),
    "long sleep": ("import time\ntime.sleep(60)", "TimeoutError"),
    "memory bomb": ("x = 'a' * (10 ** 9)", "MemoryError"),
    "growing memory": ("chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 6))", "MemoryError"),
    "recursion bomb": ("def f():\n    return f()\nf()", "RecursionError"),
    "parser bomb": ("eval('[' * 100000 + ']' * 100000)", "MemoryError"),
    "open a file": ("open('/etc/passwd').read()", "FileNotFoundError"),
    "list the root": ("import os\nos.listdir('/')", "FileNotFoundError"),
    "write a file": ("open('/tmp/owned', 'w').write('x')", "FileNotFoundError"),
    "open a socket": ("import socket\nsocket.create_connection(('127.0.0.1', 80))", "ModuleNotFoundError"),
    "exit": ("raise SystemExit(3)", "SystemExit"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_program_is_a_clean_tool_error_within_its_limit(
    client: httpx.Client, engine: EngineProcess, case: str
) -> None:
    code, kind = HOSTILE[case]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        running = pool.submit(execute, client, code)
        # Meanwhile the engine serves other requests (here: a native tool call, the health route).
        time.sleep(0.2)
        arguments = [{"name": "a", "value": 1}, {"name": "b", "value": 2}]
        add = {"namespace": "agents", "requests": [{"name": "add", "arguments": arguments}]}
        other = time.monotonic()
        assert client.post("/csi/v1/invoke_tool", json=add).json() == [[{"text": "3", "type": "text"}]]
        assert client.get("/health").status_code == 200
        assert time.monotonic() - other < 2.0
        ok, outcome = running.result(timeout=LIMIT + 30)
        elapsed = time.monotonic() - started
    assert not ok
    assert outcome["error"]["type"] == kind, outcome
    assert elapsed < LIMIT + 1.0, f"{case} took {elapsed:.1f} s"
    assert engine.process is not None and engine.process.poll() is None
    assert execute(client, "1 + 1") == (True, {"stdout": "", "stderr": "", "result": 2, "error": None})


def test_no_environment_leaks_into_the_sandbox(client: httpx.Client) -> None:
    ok, outcome = execute(client, "import os\ndict(os.environ)")
    assert (ok, outcome["result"]) == (True, {})


def test_from_an_sdk_built_skill(client: httpx.Client) -> None:
    calls = [
        {"name": "execute_python", "args": {"code": "print(input)\ninput * 2", "input": 21}},
        {"name": "execute_python", "args": {"code": "[][1]"}},
    ]
    response = client.post("/v1/skills/agents/mcp_user/run", json={"mode": "invoke", "calls": calls})
    assert response.status_code == 200, response.text
    good, bad = response.json()["result"]
    assert json.loads(good["text"]) == {"stdout": "21\n", "stderr": "", "result": 42, "error": None}
    error = json.loads(bad["error"])["error"]
    assert (error["type"], error["message"]) == ("IndexError", "list index out of range")
    busy = [{"name": "execute_python", "args": {"code": "while True: pass"}}]
    started = time.monotonic()
    response = client.post("/v1/skills/agents/mcp_user/run", json={"mode": "invoke", "calls": busy})
    assert response.status_code == 200, response.text  # the calling skill is unharmed
    assert json.loads(response.json()["result"][0]["error"])["error"]["type"] == "TimeoutError"
    assert time.monotonic() - started < LIMIT + 5.0


CODE_MODE = """
first = tools.add(a=1, b=2)
second = tools.add(a=first, b=10)
label = tools.call("alpha_only")
try:
    tools.saboteur()
except ToolError as e:
    caught = str(e)
{"first": first, "second": second, "label": label, "caught": caught}
"""


def test_code_mode_calls_tools_traced_as_children_of_the_execution(
    client: httpx.Client,
    receiver: OtlpReceiver,
) -> None:
    header, trace_id = traceparent()
    ok, outcome = execute(client, CODE_MODE, headers={"traceparent": header})
    assert ok, outcome
    assert outcome["result"] == {
        "first": 3,
        "second": 13,
        "label": "alpha",
        "caught": "Tool saboteur failed: Error executing tool saboteur: Out of cheese.",
    }
    spans = receiver.wait_for_trace(trace_id, {"code_execution", "invoke_tool"})
    [execution] = spans["code_execution"]
    outer = [s for s in spans["invoke_tool"] if s.attributes.get("gen_ai.tool.name") == "execute_python"]
    assert len(outer) == 1 and execution.parent_span_id == outer[0].span_id
    assert execution.attributes["gen_ai.tool.name"] == "execute_python"
    assert json.loads(execution.attributes["gen_ai.tool.call.arguments"])["code"] == CODE_MODE
    assert json.loads(execution.attributes["gen_ai.tool.call.result"])["result"]["second"] == 13
    deadline = time.monotonic() + 10
    while True:
        inner = [s for s in receiver.trace(trace_id) if s.parent_span_id == execution.span_id]
        if len(inner) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    names = sorted(s.attributes.get("gen_ai.tool.name", "") for s in inner if s.name == "invoke_tool")
    assert names == ["add", "add", "alpha_only", "saboteur"]
    assert [s.is_error for s in inner if s.attributes.get("gen_ai.tool.name") == "saboteur"] == [True]


def test_code_mode_cannot_start_another_execution_and_counts_tool_time(client: httpx.Client) -> None:
    ok, outcome = execute(client, "tools.execute_python(code='1')")
    assert not ok
    assert outcome["error"]["type"] == "ToolError"
    assert "cannot be called from inside a program" in outcome["error"]["message"]
    started = time.monotonic()
    ok, outcome = execute(client, "while True:\n    tools.sleep(seconds=1)")
    assert not ok and outcome["error"]["type"] == "TimeoutError"
    assert time.monotonic() - started < LIMIT + 1.0


WRONG = "```python\nnumbers = [3, 1, 2]\nstatistics.median(numbers)\n```"
FIXED = "import statistics\nnumbers = [3, 1, 2]\nprint(numbers)\nstatistics.median(numbers)"
RIGHT = f"Fixed:\n```python\n{FIXED}\n```"


def test_the_agent_example_fixes_its_program_after_one_traceback(
    client: httpx.Client, openai: tuple[OpenAIServer, str]
) -> None:
    server, _ = openai
    server.scripted["coder"] = [WRONG, RIGHT]
    seen = len(server.requests)
    body = {"question": "What is the median of 3, 1 and 2?", "model": "coder"}
    response = client.post("/v1/skills/agents/code_agent/run", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "answer": 2,
        "stdout": "[3, 1, 2]\n",
        "code": FIXED,
        "attempts": 2,
        "error": None,
    }
    first, second = [r["body"] for r in server.requests[seen:] if r["body"]["model"] == "coder"]
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    feedback = second["messages"][-1]["content"]
    assert "NameError: name 'statistics' is not defined" in feedback
    assert 'File "<code>", line 2, in <module>' in feedback


def test_the_agent_example_gives_up_after_two_wrong_programs(
    client: httpx.Client, openai: tuple[OpenAIServer, str]
) -> None:
    openai[0].scripted["coder"] = [WRONG, WRONG]
    response = client.post("/v1/skills/agents/code_agent/run", json={"question": "?", "model": "coder"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["answer"], result["attempts"]) == (None, 2)
    assert result["error"] == "NameError: name 'statistics' is not defined"
