"""Fuzzes the HTTP API with schemathesis against the engine's own `/openapi.json` (engine-spec §2.10).

Positive and negative cases per operation, bounded by `FUZZ_EXAMPLES` (default 25 per operation and mode)
and derandomized so a run is repeatable, against every route the engine serves (the document must list
them all: `test_openapi_describes_every_route`). Every response must be a documented status with its
documented content type, and never an unexpected 5xx: runtime failures (503) are documented, but nothing
generated here should cause one. The one 5xx allowed is CSI over HTTP's documented
`500 Something went wrong: ...` for a CSI call the backend refuses (PhariaEngine's mapping), e.g. a
generated model name the loopback inference backend does not know.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from skill_engine.app import create_app
from skill_engine.config import DocumentsConfig, Settings
from tests.support.aleph_alpha_server import AlephAlphaServer
from tests.support.engine import EngineProcess, WarmUp, engine_with_skills, running
from tests.support.servers import ThreadedServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
ADMIN = "fuzz-admin-token"
CSI_FAILED = "Something went wrong: "


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path, compiled_cache: Path
) -> Iterator[EngineProcess]:
    inference = ThreadedServer(AlephAlphaServer().app).start()
    workdir = tmp_path_factory.mktemp("fuzz")
    env = {
        "WASMTIME_CACHE_DIR": str(compiled_cache),
        "PHARIA_AI_FEATURE_SET": "BETA",
        "SKILL_TIMEOUT": "5s",
        "INFERENCE_URL": inference.url,
        "DOCUMENTS__DIRECTORY": str(workdir / "documents"),
        "DOCUMENTS__ADMIN_TOKEN": ADMIN,
    }
    process = engine_with_skills(workdir, {"probe": probe_wasm}, env, namespace="FUZZ")
    try:
        with running(process, [WarmUp.run("fuzz", "probe", {"mode": "echo"})], warm_timeout=120):
            yield process
    finally:
        inference.stop()


def _documented(path: str) -> str:
    return path.replace(":path}", "}")


def test_openapi_describes_every_route(engine: EngineProcess, tmp_path: Path) -> None:
    """Every route of the application (an app built in-process, never started) is in the document."""
    document = httpx.get(f"{engine.url}/openapi.json").json()
    settings = Settings(pharia_ai_feature_set="BETA", documents=DocumentsConfig(directory=tmp_path))
    app = create_app(settings)
    served = {
        (_documented(getattr(route, "path", "")), method.lower())
        for route in app.routes
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    assert served - described == set()
    assert described - served - {(path, "parameters") for path in document["paths"]} == set()


def test_openapi_document(engine: EngineProcess) -> None:
    document = httpx.get(f"{engine.url}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "pharia-engine"
    assert document["info"]["version"] == "0.15.0"
    assert document["info"]["description"].startswith("Pharia Kernel (Beta): ")
    assert document["components"]["securitySchemes"]["api_token"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert "/v1/skills/{namespace}/{name}/run" in document["paths"]
    assert "/v1/skills/{namespace}/{name}/metadata" in document["paths"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzzing_finds_no_unexpected_server_errors(engine: EngineProcess, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{engine.url}/openapi.json")
    checks = [status_code_conformance, content_type_conformance]
    # Point some cases at the skill that exists, so inputs reach the guest and not only "not found".
    names = st.sampled_from(["fuzz/probe", "fuzz/nope", "other/probe"])
    tested = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode), target=names)
        def check(case: Any, target: str) -> None:
            if case.path_parameters and "name" in case.path_parameters and target != "fuzz/nope":
                namespace, name = target.split("/")
                case.path_parameters = {**case.path_parameters, "namespace": namespace, "name": name}
            if case.path.startswith("/v1/documents/") and mode is GenerationMode.POSITIVE:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {ADMIN}"}
            response = case.call(base_url=engine.url, timeout=30)
            case.validate_response(response, checks=checks)
            csi_failure = case.path.startswith("/csi") and response.status_code == 500
            if not (csi_failure and _csi_failed(response.text)):
                case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Unsatisfiable:
            # Nothing to break in an operation without parameters or body (e.g. `GET /`).
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        tested += 1
    assert tested >= 20
    assert httpx.get(f"{engine.url}/health").text == "ok"


def _csi_failed(body: str) -> bool:
    """CSI over HTTP's documented failure answer (text, or the legacy route's JSON string)."""
    return body.startswith((CSI_FAILED, f'"{CSI_FAILED}'))
