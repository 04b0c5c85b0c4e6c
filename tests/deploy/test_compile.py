"""`skill-engine compile` and compiled artifacts shared between engines, checked before they are loaded.

The command fills a cache directory; an engine pointed at it serves the skill without compiling it. An
artifact whose bytes were changed, or whose record names another engine fingerprint or another wasm, is
ignored (and compiled afresh), never deserialised.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from skill_engine.runtime import artifacts
from tests.deploy.conftest import Compiled, compile_command
from tests.deploy.metrics import compilations
from tests.support.engine import EngineProcess


def only_artifact(cache: Path) -> Path:
    found = list(cache.glob("*.cwasm"))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.timeout(1500)  # compiles: ~10 s of CPU idle, minutes on a loaded machine
def test_compile_fills_the_cache_and_an_engine_serves_from_it_without_compiling(
    tmp_path: Path, compiled_probe: Compiled
) -> None:
    assert compiled_probe.output.startswith("compiled team/probe:latest (sha256:")
    cache = tmp_path / "cache"
    shutil.copytree(compiled_probe.cache, cache)
    artifact = only_artifact(cache)
    record = json.loads(artifact.with_suffix(".json").read_text())
    assert record["wasm"] == "sha256:" + artifact.name.split("-")[0]
    assert record["size"] == artifact.stat().st_size
    wasm = compiled_probe.skills / "probe.wasm"
    again = compile_command(cache, str(wasm), cwd=tmp_path)  # an explicit file, already compiled
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"up to date {wasm} (sha256:")

    env = {"NAMESPACES__TEAM__DIRECTORY": str(compiled_probe.skills), "WASMTIME_CACHE_DIR": str(cache)}
    engine = EngineProcess(tmp_path / "engine", env).start(timeout=300)
    try:
        response = httpx.post(
            f"{engine.url}/v1/skills/team/probe/run", json={"mode": "echo", "payload": 7}, timeout=120
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"result": 7}
        assert compilations(engine.metrics_url) == 0
    finally:
        engine.stop()


@pytest.mark.timeout(1500)  # compiles: ~10 s of CPU idle, minutes on a loaded machine
def test_a_tampered_artifact_is_ignored_and_compiled_afresh(tmp_path: Path, compiled_probe: Compiled) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(compiled_probe.cache, cache)
    artifact = only_artifact(cache)
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different content: only the hash can tell
    artifact.write_bytes(bytes(data))

    env = {"NAMESPACES__TEAM__DIRECTORY": str(compiled_probe.skills), "WASMTIME_CACHE_DIR": str(cache)}
    engine = EngineProcess(tmp_path / "engine", env).start(timeout=300)
    try:
        response = httpx.post(
            f"{engine.url}/v1/skills/team/probe/run", json={"mode": "echo", "payload": 8}, timeout=900
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"result": 8}
        assert compilations(engine.metrics_url) == 1
        assert f"ignoring compiled artifact {artifact.name}: its content hashes to sha256:" in engine.logs()
    finally:
        engine.stop()


def test_records_for_another_engine_or_another_wasm_are_not_trusted(tmp_path: Path) -> None:
    digest = "ab" * 32
    artifact = tmp_path / f"{digest}-0123456789abcdef.cwasm"
    artifacts.write(artifact, digest, b"native code")
    assert artifacts.verified(artifact, digest)
    assert not artifacts.verified(artifact, "cd" * 32)  # compiled from other wasm

    record = json.loads(artifact.with_suffix(".json").read_text())
    record["fingerprint"] = "another-engine"
    artifact.with_suffix(".json").write_text(json.dumps(record))
    artifact.write_bytes(b"native cod3")  # a new mtime: checked again
    assert not artifacts.verified(artifact, digest)

    unrecorded = tmp_path / f"{'ef' * 32}-0123456789abcdef.cwasm"
    unrecorded.write_bytes(b"native code")
    assert not artifacts.verified(unrecorded, "ef" * 32)


def test_compile_reports_a_missing_file_and_fails(tmp_path: Path) -> None:
    result = compile_command(tmp_path / "cache", str(tmp_path / "absent.wasm"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(f"failed {tmp_path / 'absent.wasm'}: ")
