"""One `skill-engine compile` of the probe skill per run, shared by the deployment tests (compiling costs
~10 s of CPU on an idle machine, minutes on a loaded one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Compiled:
    cache: Path
    skills: Path
    output: str


def compile_command(cache: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skill_engine", "compile", *args],
        env={"PATH": "/usr/bin:/bin", "WASMTIME_CACHE_DIR": str(cache), "HOME": str(cwd)},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def compiled_probe(tmp_path_factory: pytest.TempPathFactory, probe_wasm: Path) -> Compiled:
    """`skill-engine compile` (no arguments: every configured skill) of a directory namespace with probe."""
    workdir = tmp_path_factory.mktemp("compiled-probe")
    skills = workdir / "skills"
    skills.mkdir()
    shutil.copy(probe_wasm, skills / "probe.wasm")
    (workdir / "config.toml").write_text(f'[namespaces.team]\ndirectory = "{skills}"\n')
    result = compile_command(workdir / "cache", cwd=workdir)
    assert result.returncode == 0, result.stderr
    return Compiled(workdir / "cache", skills, result.stdout)
