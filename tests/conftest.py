"""Session fixtures: skills built once per run, one compiled-artifact cache shared by all engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.aleph_alpha_server import AlephAlphaServer
from tests.support.iam_server import IamServer
from tests.support.openai_server import OpenAIServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.servers import ThreadedServer
from tests.support.skills import build_skill


@pytest.fixture(scope="session")
def probe_wasm() -> Path:
    return build_skill("probe")


@pytest.fixture(scope="session")
def streamer_wasm() -> Path:
    return build_skill("streamer", "message-stream-skill")


@pytest.fixture(scope="session")
def compiled_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by every engine of the run, so each skill compiles once per run.

    `SKILL_TEST_COMPILED_CACHE=<dir>` keeps compiled skills across runs (faster local iteration).
    """
    keep = os.environ.get("SKILL_TEST_COMPILED_CACHE")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        return Path(keep)
    return tmp_path_factory.mktemp("compiled")


@pytest.fixture(scope="session")
def openai() -> Iterator[tuple[OpenAIServer, str]]:
    backend = OpenAIServer()
    server = ThreadedServer(backend.app).start()
    try:
        yield backend, f"{server.url}/v1"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def iam() -> Iterator[str]:
    """A loopback IAM test server's URL (tests/support/iam_server.py: `good-…` tokens pass, `bad-…` are
    refused); modules that assert on its requests define their own."""
    server = ThreadedServer(IamServer().app).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def docs_rag_wasm() -> Path:
    return build_skill("docs_rag")


@pytest.fixture(scope="module")
def aleph_alpha() -> Iterator[AlephAlphaServer]:
    """A loopback Aleph Alpha inference API per test module (each module asserts on its own requests)."""
    backend = AlephAlphaServer()
    server = ThreadedServer(backend.app).start()
    backend.url = server.url
    try:
        yield backend
    finally:
        server.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """A loopback OTLP/HTTP receiver per test module (each module asserts on its own spans)."""
    otlp = OtlpReceiver()
    server = ThreadedServer(otlp.app).start()
    otlp.url = server.url
    try:
        yield otlp
    finally:
        server.stop()
