"""The in-memory skill cache without precompile: one load for concurrent first calls, byte budget, LRU;
and pulling from a registry that uses the Bearer token flow.

The skills are the same probe component pushed under three names to a plain-HTTP registry (one compile
for all); the registry's access log counts the downloads. MEMORY_LIMIT=400MiB gives a budget of 100 MiB
of components (engine-spec §1.4), room for two 48 MB probes.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.engine import EngineProcess, running
from tests.support.registry import Registry, make_ca
from tests.support.servers import ThreadedServer
from tests.support.token_server import TokenServer

NAMES = ("first", "second", "third", "crowd")


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path, compiled_cache: Path
) -> Iterator[tuple[EngineProcess, Registry, httpx.Client]]:
    root = tmp_path_factory.mktemp("skill-cache")
    registry = Registry(root / "registry").start()
    ca = make_ca(root / "ca")
    tokens = TokenServer(ca, {"bob": "pw"})
    # Credentials go to a realm on another port only over HTTPS and when listed (docs/security.md).
    token_server = ThreadedServer(tokens.app, (ca.certificate, ca.key)).start()
    realm = f"{token_server.url}/token"
    seed = Registry(root / "token").start()  # oras-py would not trust the realm's CA: push before auth
    seed.oras_push(probe_wasm, "private/probe:v1")
    seed.stop()
    token_registry = Registry(root / "token", users={"bob": "pw"}, token_realm=realm, token_ca=tokens.ca)
    token_registry.start()
    try:
        for name in NAMES:
            registry.oras_push(probe_wasm, f"cache/{name}:latest")
        skills = ", ".join(f'{{"name": "{name}"}}' for name in NAMES)
        process = EngineProcess(
            root / "engine",
            {
                "NAMESPACES__CACHE__REGISTRY": f"http://{registry.host}",
                "NAMESPACES__CACHE__BASE_REPOSITORY": "cache",
                "NAMESPACES__CACHE__SKILLS": f"[{skills}]",
                "NAMESPACES__PRIVATE__REGISTRY": f"http://{token_registry.host}",
                "NAMESPACES__PRIVATE__BASE_REPOSITORY": "private",
                "NAMESPACES__PRIVATE__REGISTRY_USER": "bob",
                "NAMESPACES__PRIVATE__REGISTRY_PASSWORD": "pw",
                "NAMESPACES__PRIVATE__SKILLS": '[{"name": "probe", "tag": "v1"}]',
                "NAMESPACES__PRIVATE__REGISTRY_TOKEN_REALMS": f"127.0.0.1:{token_server.port}",
                "SSL_CERT_FILE": str(ca.ca),
                "PRECOMPILE_SKILLS": "false",
                "MEMORY_LIMIT": "400MiB",
                "WASMTIME_CACHE_DIR": str(compiled_cache),
            },
        )
        with running(process) as engine, httpx.Client(base_url=engine.url, timeout=300) as client:
            yield engine, registry, client
    finally:
        registry.stop()
        token_registry.stop()
        token_server.stop()


def run(client: httpx.Client, name: str) -> int:
    return client.post(f"/v1/skills/cache/{name}/run", json={"mode": "echo", "payload": name}).status_code


def test_nothing_is_downloaded_before_the_first_call(
    setup: tuple[EngineProcess, Registry, httpx.Client],
) -> None:
    engine, registry, client = setup
    assert client.get("/v1/skills").json() == [*(f"cache/{n}" for n in sorted(NAMES)), "private/probe"]
    assert client.get("/cached_skills").json() == []
    assert all(registry.blob_downloads(f"cache/{name}") == 0 for name in NAMES)
    assert "precompiling" not in engine.logs()


def test_concurrent_first_calls_load_once(setup: tuple[EngineProcess, Registry, httpx.Client]) -> None:
    _, registry, client = setup
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: run(client, "crowd"), range(8)))
    assert statuses == [200] * 8
    assert registry.blob_downloads("cache/crowd") == 1
    assert run(client, "crowd") == 200
    assert registry.blob_downloads("cache/crowd") == 1  # cached now


def test_least_recently_used_leaves_the_budget_first(
    setup: tuple[EngineProcess, Registry, httpx.Client],
) -> None:
    engine, _, client = setup
    assert run(client, "first") == 200
    assert run(client, "second") == 200
    cached = set(client.get("/cached_skills").json())
    assert cached == {"cache/first", "cache/second"}  # `crowd` was the least recently used
    assert run(client, "first") == 200  # now `second` is the least recently used
    assert run(client, "third") == 200
    assert set(client.get("/cached_skills").json()) == {"cache/first", "cache/third"}
    assert "evicted cache/second from the skill cache: least recently used" in engine.logs()


def test_bearer_token_flow(setup: tuple[EngineProcess, Registry, httpx.Client]) -> None:
    _, _, client = setup
    response = client.post("/v1/skills/private/probe/run", json={"mode": "echo", "payload": "tokened"})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "tokened"}
    client.delete("/cached_skills/private/probe")  # keep the LRU test's budget to itself
