"""Hostile teams and credentials (issue 13 items 1, 3, 6): one engine, many namespaces, each a way a team's
file or the network could reach what is not theirs.

- `team-a`: a team file over HTTP (with an access token) listing one good skill and every bad name, against
  a real docker-registry with HTTP Basic; the registry's access log shows no request outside `team-a/good`.
- `local`: the same names in a `file://` team file with a local `path`, and a component right outside it.
- `watched`: a watched directory with a file whose stem is not a skill name.
- `realm-http`, `realm-other`, `realm-listed`: docker-registries with the token flow, whose realm is plain
  HTTP on another port, HTTPS on another port, and the same HTTPS realm listed by the operator.
- `moved`: a registry that redirects its layer to another origin, and a team file that redirects too.
- `caps`: a registry announcing a 10 GB layer, streaming one forever, and serving a 5 MiB manifest;
  `bigfile`: a 2 MiB team file.

The last test greps everything the engine wrote (log, OTLP exports, metrics, every answer body) for every
configured secret.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.engine import EngineProcess, running
from tests.support.hostile_registry import HostileRegistry, Recorder, Redirector
from tests.support.namespace_server import NamespaceServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.registry import Registry, make_ca
from tests.support.servers import ThreadedServer
from tests.support.token_server import TokenServer

SECRETS = {
    "config_token": "cfg-token-7f3a9c",
    "moved_token": "moved-token-51be2d",
    "registry_password": "reg-pass-c0ffee42",
    "token_password": "tok-pass-9d8e7f",
    "hostile_password": "hostile-pass-77aa11",
    "openai_token": "openai-key-3141592",
    "admin_token": "admin-token-2718281",
    "caller_token": "caller-token-1618033",
}

BAD_NAMES = [
    "../other-team/skill",
    "a/../../b",
    "x?y",
    "%2e%2e",
    "/etc/passwd",
    "nul\x00byte",
    "o" * 300,
    "../outside",
]
BAD_TAGS = {"tagged1": "../../other-team/skill", "tagged2": "v1?x=y"}


def team_file() -> str:
    lines = ['{ name = "good", tag = "v1" },']
    lines += ["{ name = " + json.dumps(name) + " }," for name in BAD_NAMES]  # TOML accepts JSON's escapes
    lines += [f'{{ name = "{name}", tag = "{tag}" }},' for name, tag in BAD_TAGS.items()]
    return "skills = [\n" + "\n".join(lines) + "\n]\n"


def quoted(name: str) -> str:
    """How the engine names an entry in its texts (JSON string, cut at 80 characters)."""
    text = json.dumps(name[:80])
    return text if len(name) <= 80 else text[:-1] + "…"


@dataclass
class Setup:
    engine: EngineProcess
    client: httpx.Client
    registry: Registry
    registry_mark: int
    http_realm: TokenServer
    https_realm: TokenServer
    hostile: HostileRegistry
    blob_host: Recorder
    moved_file: NamespaceServer
    receiver: OtlpReceiver
    bodies: list[str] = field(default_factory=list)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Every answer is kept for the final grep."""
        headers = {"authorization": f"Bearer {SECRETS['caller_token']}", **kwargs.pop("headers", {})}
        response = self.client.request(method, path, headers=headers, **kwargs)
        self.bodies.append(response.text)
        return response

    def run(self, namespace: str, name: str, payload: Any = "hi") -> httpx.Response:
        return self.call(
            "POST", f"/v1/skills/{namespace}/{name}/run", json={"mode": "echo", "payload": payload}
        )


def _serve(app: Any, servers: list[ThreadedServer], tls: tuple[Path, Path] | None = None) -> str:
    server = ThreadedServer(app, tls).start()
    servers.append(server)
    return server.url


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
    probe_wasm: Path,
    compiled_cache: Path,
    openai: tuple[Any, str],
) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("hostile-teams")
    servers: list[ThreadedServer] = []
    registries: list[Registry] = []
    try:
        ca = make_ca(root / "ca")
        # A real registry with HTTP Basic: the team's good skill and the repository of another team.
        # (oras-py speaks only the token flow, so pushes go in before authentication is switched on.)
        seed = Registry(root / "registry").start()
        seed.oras_push(probe_wasm, "team-a/good:v1")
        seed.oras_push(probe_wasm, "other-team/skill:latest")
        seed.stop()
        registry = Registry(root / "registry", users={"team": SECRETS["registry_password"]}).start()
        registries.append(registry)
        # Token-flow registries sharing one storage, pushed to before the token flow is switched on.
        storage = root / "token-registry"
        seed = Registry(storage).start()
        seed.oras_push(probe_wasm, "realm/probe:v1")
        seed.stop()
        http_realm = TokenServer(ca, {"bob": SECRETS["token_password"]})
        https_realm = TokenServer(ca, {"bob": SECRETS["token_password"]})
        http_realm_url = _serve(http_realm.app, servers) + "/token"
        https_realm_url = _serve(https_realm.app, servers, (ca.certificate, ca.key)) + "/token"
        realm_registries = {}
        for label, realm in (("http", http_realm_url), ("https", https_realm_url)):
            token_registry = Registry(storage, token_realm=realm, token_ca=ca).start()
            registries.append(token_registry)
            realm_registries[label] = token_registry
        https_port = https_realm_url.split(":")[2].split("/")[0]
        # The hostile registry, its blob host, and the redirecting team file.
        hostile = HostileRegistry(probe_wasm.read_bytes(), "mallory", SECRETS["hostile_password"])
        blob_host = Recorder(probe_wasm.read_bytes())
        hostile.blob_origin = _serve(blob_host.app, servers)
        hostile_url = _serve(hostile.app, servers)
        moved_file = NamespaceServer('skills = [{ name = "probe" }]\n')
        redirector = Redirector()
        redirector.target = _serve(moved_file.app, servers)
        moved_url = _serve(redirector.app, servers) + "/namespace.toml"
        team_a = NamespaceServer(team_file())
        team_a_url = _serve(team_a.app, servers) + "/namespace.toml"
        big = NamespaceServer("skills = []\n" + "# padding\n" * 210_000)
        big_url = _serve(big.app, servers) + "/namespace.toml"
        receiver = OtlpReceiver()
        receiver.url = _serve(receiver.app, servers)

        workdir = root / "engine"
        local_path = workdir / "local-skills"
        local_path.mkdir(parents=True)
        shutil.copy(probe_wasm, local_path / "good.wasm")
        shutil.copy(probe_wasm, workdir / "outside.wasm")  # what `../outside` would reach
        (workdir / "local.toml").write_text(team_file())
        watched = workdir / "watched"
        watched.mkdir()
        shutil.copy(probe_wasm, watched / "good.wasm")
        shutil.copy(probe_wasm, watched / "Not A Name.wasm")
        max_size = probe_wasm.stat().st_size + 4 * 1024 * 1024

        def namespace(name: str, **keys: str) -> dict[str, str]:
            prefix = f"NAMESPACES__{name.upper().replace('-', '_')}__"
            return {prefix + key: value for key, value in keys.items()}

        env = {
            **namespace(
                "team-a",
                CONFIG_URL=team_a_url,
                CONFIG_ACCESS_TOKEN=SECRETS["config_token"],
                REGISTRY=f"http://{registry.host}",
                BASE_REPOSITORY="team-a",
                REGISTRY_USER="team",
                REGISTRY_PASSWORD=SECRETS["registry_password"],
            ),
            **namespace("local", CONFIG_URL="file://local.toml", PATH=str(local_path)),
            **namespace("watched", DIRECTORY=str(watched)),
            **{
                key: value
                for label, ns in (("http", "realm-http"), ("https", "realm-other"), ("https", "realm-listed"))
                for key, value in namespace(
                    ns,
                    SKILLS='[{"name": "probe", "tag": "v1"}]',
                    REGISTRY=f"http://{realm_registries[label].host}",
                    BASE_REPOSITORY="realm",
                    REGISTRY_USER="bob",
                    REGISTRY_PASSWORD=SECRETS["token_password"],
                ).items()
            },
            **namespace("realm-listed", REGISTRY_TOKEN_REALMS=f"127.0.0.1:{https_port}"),
            **namespace(
                "moved",
                CONFIG_URL=moved_url,
                CONFIG_ACCESS_TOKEN=SECRETS["moved_token"],
                REGISTRY=hostile_url,
                BASE_REPOSITORY="moved",
                REGISTRY_USER="mallory",
                REGISTRY_PASSWORD=SECRETS["hostile_password"],
            ),
            **namespace(
                "caps",
                SKILLS='[{"name": "huge"}, {"name": "endless"}, {"name": "bigmanifest"}]',
                REGISTRY=hostile_url,
                BASE_REPOSITORY="caps",
                REGISTRY_USER="mallory",
                REGISTRY_PASSWORD=SECRETS["hostile_password"],
            ),
            **namespace("bigfile", CONFIG_URL=big_url, PATH=str(local_path)),
            "MAX_SKILL_SIZE": str(max_size),
            "PRECOMPILE_SKILLS": "false",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "SSL_CERT_FILE": str(ca.ca),
            "OTEL_ENDPOINT": receiver.url,
            "OTEL_SAMPLING_RATIO": "1.0",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OPENAI_INFERENCE__URL": openai[1],
            "OPENAI_INFERENCE__TOKEN": SECRETS["openai_token"],
            "DOCUMENTS__ADMIN_TOKEN": SECRETS["admin_token"],
            "DOCUMENTS__DIRECTORY": str(root / "documents"),
            "LOG_LEVEL": "debug",
        }
        mark = len(registry.logs())
        with (
            running(EngineProcess(workdir, env), timeout=120) as engine,
            httpx.Client(base_url=engine.url, timeout=600) as client,
        ):
            yield Setup(
                engine,
                client,
                registry,
                mark,
                http_realm,
                https_realm,
                hostile,
                blob_host,
                moved_file,
                receiver,
            )
    finally:
        for server in servers:
            server.stop()
        for registry_process in registries:
            registry_process.stop()


# -- item 1: names from team files are data ---------------------------------------------------------


def test_only_the_valid_entries_are_served(setup: Setup) -> None:
    skills = setup.call("GET", "/v1/skills").json()
    assert skills == [
        "caps/bigmanifest",
        "caps/endless",
        "caps/huge",
        "local/good",
        "moved/probe",
        "realm-http/probe",
        "realm-listed/probe",
        "realm-other/probe",
        "team-a/good",
        "watched/good",
    ]
    for namespace in ("team-a", "local", "watched"):
        response = setup.run(namespace, "good", namespace)
        assert response.status_code == 200, response.text
        assert response.json() == {"result": namespace}


def test_each_refused_entry_is_reported(setup: Setup) -> None:
    log = setup.engine.logs()
    for namespace in ("team-a", "local"):
        for name in BAD_NAMES:
            refused = "an entry was refused and is not served"
            line = f"namespace {namespace}: {refused}: the skill name {quoted(name)}"
            assert line in log, line
        for name, tag in BAD_TAGS.items():
            assert f'the tag {quoted(tag)} of skill "{name}" was refused' in log
    assert 'the skill name "Not A Name" was refused' in log
    assert "\x00" not in log
    metrics = httpx.get(setup.engine.metrics_url, timeout=30).text
    setup.bodies.append(metrics)
    expected = len(BAD_NAMES) + len(BAD_TAGS)
    assert f'kernel_namespace_refused_skills{{namespace="team-a"}} {expected}.0' in metrics
    assert f'kernel_namespace_refused_skills{{namespace="local"}} {expected}.0' in metrics
    assert 'kernel_namespace_refused_skills{namespace="watched"} 1.0' in metrics


def test_a_request_naming_a_refused_entry_gets_the_reason(setup: Setup) -> None:
    for path, name in (("x%3Fy", "x?y"), ("%252e%252e", "%2e%2e"), ("tagged2", "v1?x=y")):
        response = setup.call("POST", f"/v1/skills/team-a/{path}/run", json={})
        assert response.status_code == 500, response.text
        assert "the namespace 'team-a' is misconfigured" in response.text
        assert f"{quoted(name)}" in response.text and "was refused" in response.text


def test_no_request_left_the_base_repository(setup: Setup) -> None:
    lines = setup.registry.logs()[setup.registry_mark :]
    paths = re.findall(r'"(?:GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.1"', lines)
    assert any(p.startswith("/v2/team-a/good/manifests/") for p in paths), lines[-2000:]
    strays = [p for p in paths if p != "/v2/" and not p.startswith("/v2/team-a/good/")]
    assert strays == []


def test_no_file_outside_the_path_is_served(setup: Setup) -> None:
    assert setup.run("local", "outside").status_code == 400  # not configured: `../outside` was refused
    assert "local/outside" not in setup.call("GET", "/v1/skills").json()


# -- item 3: credentials go only where they belong --------------------------------------------------


def test_a_plain_http_realm_on_another_port_gets_no_credentials(setup: Setup) -> None:
    response = setup.run("realm-http", "probe")
    assert response.status_code == 503, response.text
    assert "is not HTTPS" in response.text
    assert "NAMESPACES__REALM_HTTP__REGISTRY_TOKEN_REALMS" in response.text
    assert setup.http_realm.authorizations == []  # not even asked without credentials


def test_an_https_realm_on_another_port_gets_credentials_only_when_listed(setup: Setup) -> None:
    response = setup.run("realm-other", "probe")
    assert response.status_code == 503, response.text
    assert "neither the registry's own host and port nor listed by the operator" in response.text
    assert "NAMESPACES__REALM_OTHER__REGISTRY_TOKEN_REALMS" in response.text
    assert setup.https_realm.authorizations == []
    listed = setup.run("realm-listed", "probe", "tokened")
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"result": "tokened"}
    assert [a is not None and a.startswith("Basic ") for a in setup.https_realm.authorizations] == [True]


def test_no_credential_survives_a_redirect_to_another_origin(setup: Setup) -> None:
    response = setup.run("moved", "probe", "moved")
    assert response.status_code == 200, response.text
    assert setup.blob_host.authorizations, "the layer was fetched from the other origin"
    assert all(authorization is None for _, authorization in setup.blob_host.authorizations)
    # The team file moved to another origin: its access token did not follow it there.
    assert setup.moved_file.authorizations and all(a is None for a in setup.moved_file.authorizations)


# -- item 6: size caps ------------------------------------------------------------------------------


def test_a_10_gb_layer_is_refused_unread(setup: Setup) -> None:
    response = setup.run("caps", "huge")
    assert response.status_code == 503, response.text
    assert f"the layer has {10 * 1024**3} bytes, more than the limit of" in response.text


def test_an_endless_layer_is_cut_at_the_limit(setup: Setup) -> None:
    response = setup.run("caps", "endless")
    assert response.status_code == 503, response.text
    assert "the layer is larger than the limit of" in response.text
    limit = int(setup.engine.env["MAX_SKILL_SIZE"])
    # What the server got out: the limit, plus what socket buffers held when the engine hung up.
    assert setup.hostile.sent < limit + 32 * 1024 * 1024


def test_an_oversized_manifest_and_namespace_file_are_refused(setup: Setup) -> None:
    response = setup.run("caps", "bigmanifest")
    assert response.status_code == 503, response.text
    assert "the manifest has" in response.text and f"the limit of {4 * 1024 * 1024}" in response.text
    response = setup.run("bigfile", "good")
    assert response.status_code == 500, response.text
    assert "is larger than the limit of 1048576 bytes" in response.text


def test_random_skill_names_create_no_metric_series(setup: Setup) -> None:
    for i in range(50):
        assert setup.run("team-a", f"random-{i}").status_code == 400
        assert setup.run(f"unknown-{i}", "good").status_code == 400
    metrics = httpx.get(setup.engine.metrics_url, timeout=30).text
    setup.bodies.append(metrics)
    assert "random-" not in metrics and "unknown-" not in metrics
    fetches = [
        line for line in metrics.splitlines() if line.startswith("kernel_skill_fetch_duration_seconds_count")
    ]
    assert 'kernel_skill_fetch_duration_seconds_count{name="good",namespace="team-a"} 1.0' in fetches, fetches


# -- the grep -----------------------------------------------------------------------------------------


def test_no_secret_in_anything_the_engine_wrote(setup: Setup) -> None:
    # A call that carries the OpenAI key and the caller's token to a backend.
    chat = setup.call("POST", "/v1/skills/local/good/run", json={"mode": "chat", "text": "hello"})
    assert chat.status_code in (200, 400, 503), chat.text
    setup.bodies.append(httpx.get(setup.engine.metrics_url, timeout=30).text)
    setup.engine.stop()  # flushes the last spans
    log = setup.engine.logs()
    spans = b"".join(setup.receiver.raw)
    assert spans, "the engine exported spans"
    everything = [("log", log), ("bodies", "\n".join(setup.bodies))]
    for key, secret in SECRETS.items():
        for what, text in everything:
            assert secret not in text, f"{key} found in {what}"
        assert secret.encode() not in spans, f"{key} found in the OTLP export"
