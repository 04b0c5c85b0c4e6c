"""Deployment end to end: skills published to a real OCI registry, namespaces from files and over HTTP,
live updates, the skill cache routes, MCP server listing and chat skills.

Registries are Debian's `docker-registry`: one with TLS (a throw-away CA trusted through SSL_CERT_FILE) and
htpasswd auth, written to by the SDK's own `pharia-skill publish`; one in plain HTTP without auth, written
to by the `oras` package. To keep compilation down, "version 2" of a skill is the `streamer` component
(a message-stream skill), so the version served is visible from the outside.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_stream import parse_sse
from tests.support.engine import EngineProcess
from tests.support.mcp_servers import McpServerProcess
from tests.support.namespace_server import NamespaceServer
from tests.support.openai_server import OpenAIServer
from tests.support.registry import Registry, make_ca
from tests.support.servers import ThreadedServer

USER, PASSWORD = "alice", "s3cret"
SERVER_ERROR_PREFIX = (
    "The skill could not be executed to completion, something in our runtime is currently unavailable or "
    "misconfigured. You should try again later, if the situation persists you may want to contact the "
    "operators. Original error:\n\n"
)
IS_STREAM = "The skill is designed to stream output. Please invoke it via the /message-stream endpoint."


def misconfigured(namespace: str, detail: str) -> str:
    return (
        f"The skill could not be executed to completion, the namespace '{namespace}' is misconfigured. "
        "If you are the developer who configured the skill, you should probably fix this error. If you are "
        "not, there is nothing you can do, until the developer who maintains the list of skills to be "
        f"served, fixes this. Original Syntax error:\n\n{detail}"
    )


@dataclass
class Deployment:
    engine: EngineProcess
    client: httpx.Client
    secure: Registry
    plain: Registry
    remote: NamespaceServer
    remote_url: str
    team_file: Path
    openai: OpenAIServer

    def run(self, namespace: str, name: str, body: Any = None) -> httpx.Response:
        return self.client.post(f"/v1/skills/{namespace}/{name}/run", json=body or {"mode": "echo"})

    def skills(self) -> list[str]:
        result: list[str] = self.client.get("/v1/skills").json()
        return result

    def cached(self) -> list[str]:
        result: list[str] = self.client.get("/cached_skills").json()
        return result


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> float:
    """Seconds it took for `condition` to hold."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return time.monotonic() - started


TEAM_V1 = """
skills = [
  { name = "probe", tag = "v1" },
  { name = "rolling" },
  { name = "ghost", tag = "v1" },
]
mcp-servers = ["http://127.0.0.1:9/mcp"]
native-tools = ["subtract"]
"""


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[OpenAIServer, str],
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deploy")
    tls = make_ca(root / "ca")
    secure = Registry(root / "secure", tls=tls, users={USER: PASSWORD}).start()
    plain = Registry(root / "plain").start()
    remote = NamespaceServer('skills = [{ name = "probe" }]\n')
    remote_server = ThreadedServer(remote.app).start()
    engine: EngineProcess | None = None
    try:
        secure.publish(probe_wasm, "probe", "v1", "skills/team", USER, PASSWORD)
        secure.publish(probe_wasm, "rolling", "latest", "skills/team", USER, PASSWORD)
        plain.oras_push(probe_wasm, "base/probe:v1")
        workdir = root / "engine"
        workdir.mkdir()
        team_file = workdir / "team.toml"
        team_file.write_text(TEAM_V1)
        local = workdir / "local-skills"
        local.mkdir()
        (local / "probe.wasm").write_bytes(probe_wasm.read_bytes())
        remote_url = f"{remote_server.url}/namespace.toml"
        (workdir / "config.toml").write_text(
            f"""
[namespaces.team]
config-url = "file://team.toml"
registry = "{secure.host}"
base-repository = "/skills/team/"
registry-user = "{USER}"

[namespaces.plain]
registry = "http://{plain.host}"
base-repository = "base"
mcp-servers = ["http://b.example/mcp", "http://a.example/mcp"]
native-tools = ["add"]
skills = [
  {{ name = "probe", tag = "v1" }},
  {{ type = "chat", name = "pluto", version = "1", model = "chat-model", system_prompt = "You are Pluto." }},
]

[namespaces.remote]
config-url = "{remote_url}"
config-access-token = "team-token"
path = "{local}"
"""
        )
        backend, url = openai
        engine = EngineProcess(
            workdir,
            {
                "NAMESPACES__TEAM__REGISTRY_PASSWORD": PASSWORD,  # file and env each give part of it
                "SSL_CERT_FILE": str(tls.ca),
                "WASMTIME_CACHE_DIR": str(compiled_cache),
                "OPENAI_INFERENCE__URL": url,
                "OPENAI_INFERENCE__TOKEN": "tok",
            },
        ).start()
        with httpx.Client(base_url=engine.url, timeout=300) as client:
            yield Deployment(engine, client, secure, plain, remote, remote_url, team_file, backend)
    finally:
        if engine is not None:
            engine.stop()
        remote_server.stop()
        secure.stop()
        plain.stop()


def test_all_three_shapes_are_listed(deployment: Deployment) -> None:
    assert deployment.skills() == [
        "plain/pluto",
        "plain/probe",
        "remote/probe",
        "team/ghost",
        "team/probe",
        "team/rolling",
    ]


def test_skill_published_with_the_sdk_to_a_tls_registry_with_auth(deployment: Deployment) -> None:
    response = deployment.run("team", "probe", {"mode": "echo", "payload": "from the registry"})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "from the registry"}
    assert "team/probe" in deployment.cached()


def test_skill_pushed_with_oras_to_a_plain_http_registry(deployment: Deployment) -> None:
    response = deployment.run("plain", "probe", {"mode": "echo", "payload": 42})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": 42}


def test_listed_but_absent_in_the_registry(deployment: Deployment) -> None:
    response = deployment.run("team", "ghost")
    assert response.status_code == 503
    assert (
        response.text
        == SERVER_ERROR_PREFIX + "Error loading skill: Skill team/ghost:v1 not found in registry."
    )


def test_precompile_and_the_first_request_share_one_download(deployment: Deployment) -> None:
    deployment.run("team", "probe")
    assert deployment.secure.blob_downloads("skills/team/probe") == 1
    assert "precompiled team/probe:v1 in" in deployment.engine.logs()


def test_mcp_servers_and_native_tools_per_namespace(deployment: Deployment) -> None:
    client = deployment.client
    assert client.get("/v1/mcp_servers/plain").json() == ["http://a.example/mcp", "http://b.example/mcp"]
    assert client.get("/v1/mcp_servers/team").json() == ["http://127.0.0.1:9/mcp"]
    assert client.get("/v1/mcp_servers/remote").json() == []
    for unknown in ("nowhere", "test-beta"):
        response = client.get(f"/v1/mcp_servers/{unknown}")
        assert response.status_code == 404
        assert response.json() == f"Namespace '{unknown}' not found"
    assert [t["name"] for t in client.get("/v1/tools/plain").json()] == ["add"]
    assert [t["name"] for t in client.get("/v1/tools/team").json()] == ["subtract"]


def test_cache_routes(deployment: Deployment) -> None:
    client = deployment.client
    assert deployment.run("plain", "probe").status_code == 200
    assert "plain/probe" in deployment.cached()
    first = client.delete("/cached_skills/plain/probe")
    assert (first.status_code, first.headers["content-type"]) == (200, "application/json")
    assert first.content == b'"Skill removed from cache"'
    assert client.delete("/cached_skills/plain/probe").content == b'"Skill was not present in cache"'
    assert "plain/probe" not in deployment.cached()
    assert "plain/probe" in deployment.skills()  # still configured: the next call loads it again
    assert deployment.run("plain", "probe").status_code == 200
    assert client.delete("/cached_skills/Bad_Namespace/x").status_code == 400


def test_chat_skill_streams_with_the_system_prompt_first(deployment: Deployment) -> None:
    before = len(deployment.openai.requests)
    body = {"messages": [{"role": "user", "content": "Who are you?"}]}
    response = deployment.client.post("/v1/skills/plain/pluto/message-stream", json=body)
    assert response.status_code == 200
    events = parse_sse(response.content)
    assert events[0] == ("message", {"type": "begin"})
    text = "".join(data["text"] for name, data in events if data.get("type") == "append")
    assert text == "echo: Who are you?"
    assert events[-1] == ("message", {"type": "end", "payload": "Stop"})
    sent = deployment.openai.requests[before]["body"]
    assert sent["model"] == "chat-model"
    assert sent["messages"] == [
        {"role": "system", "content": "You are Pluto."},
        {"role": "user", "content": "Who are you?"},
    ]
    assert "plain/pluto" not in deployment.cached()


def test_chat_skill_errors_and_metadata(deployment: Deployment) -> None:
    client = deployment.client
    bad_role = {"messages": [{"role": "robot", "content": "beep"}]}
    events = parse_sse(client.post("/v1/skills/plain/pluto/message-stream", json=bad_role).content)
    assert events == [
        ("error", {"message": "The skill had trouble interpreting the input:\n\nInvalid role: robot"})
    ]
    assert deployment.run("plain", "pluto").text == IS_STREAM
    assert client.get("/v1/skills/plain/pluto/metadata").json() == {
        "description": "A chat skill",
        "version": "0.3",
        "skill_type": "message_stream",
        "input_schema": {
            "properties": {"messages": {"title": "Messages", "type": "array"}},
            "required": ["messages"],
            "title": "SkillInput",
            "type": "object",
        },
        "output_schema": None,
    }


def test_new_tag_in_the_namespace_file_is_served(deployment: Deployment, streamer_wasm: Path) -> None:
    assert deployment.run("team", "probe").status_code == 200
    deployment.secure.publish(streamer_wasm, "probe", "v2", "skills/team", USER, PASSWORD)
    deployment.team_file.write_text(TEAM_V1.replace('tag = "v1" }', 'tag = "v2" }', 1))
    # The tag change evicts v1 within one interval (300 ms; allow for a loaded machine)...
    assert wait_for(lambda: "team/probe" not in deployment.cached(), timeout=10) < 5
    # ...and the next call is served by v2, a message-stream skill.
    assert deployment.run("team", "probe").text == IS_STREAM
    assert "precompiled team/probe:v2 in" in deployment.engine.logs()


def test_retagging_latest_evicts_the_cached_skill(deployment: Deployment, streamer_wasm: Path) -> None:
    assert deployment.run("team", "rolling").status_code == 200
    assert "team/rolling" in deployment.cached()
    deployment.secure.publish(streamer_wasm, "rolling", "latest", "skills/team", USER, PASSWORD)
    wait_for(lambda: "team/rolling" not in deployment.cached(), timeout=10)
    assert deployment.run("team", "rolling").text == IS_STREAM
    assert (
        "evicted team/rolling from the cache: rolling:latest now has digest sha256:"
        in deployment.engine.logs()
    )


def test_broken_namespace_file_marks_the_namespace_until_fixed(deployment: Deployment) -> None:
    good = deployment.team_file.read_text()
    deployment.team_file.write_text("skills = [ { name = ")
    detail = "Unable to parse file team.toml into a valid configuration for a team owned namespace."
    wait_for(lambda: deployment.run("team", "probe").text == misconfigured("team", detail))
    assert deployment.run("team", "probe").status_code == 500
    assert not [s for s in deployment.skills() if s.startswith("team/")]
    assert deployment.client.get("/v1/mcp_servers/team").json() == []

    deployment.team_file.unlink()
    wait_for(
        lambda: deployment.run("team", "probe").text == misconfigured("team", "Unable to read file team.toml")
    )

    deployment.team_file.write_text(good)
    wait_for(lambda: "team/probe" in deployment.skills())
    assert deployment.run("team", "probe").status_code == 400  # v2 is a stream skill: served again


def test_remote_namespace_file_reactions(deployment: Deployment) -> None:
    remote, url = deployment.remote, deployment.remote_url

    def passes(n: int = 3) -> None:
        before = len(remote.authorizations)
        wait_for(lambda: len(remote.authorizations) >= before + n)

    assert remote.authorizations[-1] == "Bearer team-token"
    assert deployment.run("remote", "probe").status_code == 200

    # 5xx and 429 are recoverable: the last good state stays.
    for status in (500, 503, 429):
        remote.answer(status)
        passes()
        assert "remote/probe" in deployment.skills()
        assert deployment.run("remote", "probe").status_code == 200

    remote.answer(404)
    not_found = f"HTTP status client error (404 Not Found) for url ({url})"
    wait_for(lambda: deployment.run("remote", "probe").text == misconfigured("remote", not_found))
    assert "remote/probe" not in deployment.skills()

    remote.answer(401)
    invalid_token = f"Invalid token configured for accessing '{url}'."
    wait_for(lambda: deployment.run("remote", "probe").text == misconfigured("remote", invalid_token))
    assert "NAMESPACES__REMOTE__CONFIG_ACCESS_TOKEN" in deployment.engine.logs()

    remote.answer(200, 'skills = [{ name = "probe" }]\nmcp-servers = ["http://c.example/mcp"]\n')
    wait_for(lambda: deployment.run("remote", "probe").status_code == 200)
    assert deployment.client.get("/v1/mcp_servers/remote").json() == ["http://c.example/mcp"]

    remote.answer(200, "skills = [ nope")
    unparsable = f"Unable to parse file at '{url}' into a valid configuration for a team owned namespace."
    wait_for(lambda: deployment.run("remote", "probe").text == misconfigured("remote", unparsable))

    remote.answer(200, 'skills = [{ name = "probe" }]\nnative-tools = ["teleport"]\n')
    passes()
    assert deployment.run("remote", "probe").text == misconfigured("remote", unparsable)

    remote.answer(200, 'skills = [{ name = "probe" }]\n')
    wait_for(lambda: deployment.run("remote", "probe").status_code == 200)
    assert json.loads(deployment.run("remote", "probe", {"mode": "echo", "payload": 1}).text) == {"result": 1}


def test_mcp_servers_in_the_team_file_are_connected_and_dropped_live(deployment: Deployment) -> None:
    client = deployment.client

    def tools() -> list[str]:
        return [tool["name"] for tool in client.get("/v1/tools/team").json()]

    server = McpServerProcess("streamable", "live").start()
    good = deployment.team_file.read_text()
    try:
        listed = 'mcp-servers = ["http://127.0.0.1:9/mcp"]'
        assert listed in good
        deployment.team_file.write_text(good.replace(listed, f'mcp-servers = ["{server.url}"]'))
        wait_for(lambda: "live_only" in tools())
        assert client.get("/v1/mcp_servers/team").json() == [server.url]
        assert {"add", "subtract", "live_only"} <= set(tools())
        deployment.team_file.write_text(good)
        wait_for(lambda: "live_only" not in tools())
        assert tools() == ["subtract"]
    finally:
        deployment.team_file.write_text(good)
        server.stop()


def test_registry_down_keeps_serving_cached_skills(deployment: Deployment) -> None:
    """Fault: the registry goes away. Cached skills keep answering; an uncached one fails, never hangs."""
    assert deployment.run("plain", "probe").status_code == 200
    assert "plain/probe" in deployment.cached()
    deployment.plain.stop()
    try:
        time.sleep(2)  # several namespace passes and digest checks against the unreachable registry
        response = deployment.run("plain", "probe", {"mode": "echo", "payload": "still here"})
        assert response.status_code == 200, response.text
        assert response.json() == {"result": "still here"}
        assert "plain/probe" in deployment.cached()
        assert deployment.client.delete("/cached_skills/plain/probe").status_code == 200
        started = time.monotonic()
        unreachable = deployment.run("plain", "probe")
        assert unreachable.status_code == 503, unreachable.text
        assert time.monotonic() - started < 60
    finally:
        deployment.plain.start()
    assert deployment.run("plain", "probe").status_code == 200
