"""Start-up around namespaces: the port opens only after the first pass; bad namespace config stops
start-up; `?type=` filtering of `/v1/skills` in the BETA feature set. No Wasm is loaded here."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, run_engine_once
from tests.support.namespace_server import NamespaceServer
from tests.support.servers import ThreadedServer

DESCRIPTION = """
skills = [
  { name = "haiku" },
  { type = "chat", name = "pluto", version = "1", model = "m", system_prompt = "p" },
]
"""


def test_port_opens_only_after_the_first_namespace_pass(tmp_path: Path) -> None:
    remote = NamespaceServer(DESCRIPTION)
    remote.delay = 3.0
    server = ThreadedServer(remote.app).start()
    engine = EngineProcess(
        tmp_path,
        {
            "NAMESPACES__TEAM__CONFIG_URL": f"{server.url}/namespace.toml",
            "NAMESPACES__TEAM__PATH": str(tmp_path),
            "PHARIA_AI_FEATURE_SET": "beta",
            "NAMESPACES__TEAM_B__PATH": str(tmp_path),
            "NAMESPACES__TEAM_B__SKILLS": '[{"name": "a"}]',
        },
    )
    starting = threading.Thread(target=engine.start)
    starting.start()
    try:
        deadline = time.monotonic() + 60
        while not remote.authorizations:  # the first pass is waiting for the namespace file
            assert time.monotonic() < deadline, engine.logs()
            time.sleep(0.02)
        remote.delay = 0.0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{engine.url}/health", timeout=1)
        starting.join(timeout=60)
        client = httpx.Client(base_url=engine.url)
        # Namespace, then name: `team` before `team-b` although "team-b/" < "team/" as strings.
        assert client.get("/v1/skills").json() == ["team/haiku", "team/pluto", "team-b/a"]
        assert client.get("/v1/skills?type=chat").json() == ["team/pluto"]
        assert client.get("/v1/skills?type=programmable").json() == ["team/haiku", "team-b/a"]
        rejected = client.get("/v1/skills?type=other")
        assert rejected.status_code == 400
        assert rejected.text.startswith("Failed to deserialize query string: unknown variant `other`")
    finally:
        starting.join(timeout=60)
        engine.stop()
        server.stop()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"NAMESPACES__TEAM__CONFIG_URL": "ftp://example.com/ns.toml", "NAMESPACES__TEAM__PATH": "x"},
            "Unsupported URL scheme: ftp",
        ),
        (
            {"NAMESPACES__TEAM__REGISTRY": "registry.example.com"},
            "needs `config-url`, `directory` or `skills`",
        ),
    ],
)
def test_invalid_namespace_config_stops_start_up(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = run_engine_once(tmp_path, env)
    assert result.returncode != 0
    assert message in result.stderr
