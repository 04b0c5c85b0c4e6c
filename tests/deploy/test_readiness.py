"""`GET /ready` for probes and balancers: public like `/health`, `ready` while serving."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.engine import EngineProcess
from tests.support.servers import free_port


def test_ready_is_public_and_ready_while_serving(tmp_path: Path) -> None:
    closed_iam = f"http://127.0.0.1:{free_port()}"  # nothing listens: any IAM check would fail
    engine = EngineProcess(tmp_path, {"AUTHORIZATION_URL": closed_iam}).start(timeout=300)  # loaded CI
    try:
        ready = httpx.get(f"{engine.url}/ready", timeout=10)
        assert (ready.status_code, ready.text) == (200, "ready")
        assert httpx.get(f"{engine.url}/v1/skills", timeout=10).status_code != 200  # needs the IAM
    finally:
        engine.stop()
