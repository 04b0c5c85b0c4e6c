"""Builds test skills with the official SDK (`pharia-skill build`) in its own tool environment.

Each build costs ~20 s, so components are cached outside the repository by the hash of their source, the
SDK's lock file and the skill type: a run builds each test skill at most once, later runs not at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "tests" / "skills"
TOOL_LOCK = SOURCES / "requirements.lock"


def tool_env() -> Path:
    return Path(os.environ.get("SKILL_BUILD_ENV", ROOT / ".venv-skill-build"))


def cache_dir() -> Path:
    path = Path(os.environ.get("SKILL_TEST_CACHE", platformdirs.user_cache_dir("skill-engine-tests")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_skill(module: str, skill_type: str = "skill") -> Path:
    """Returns the path of `<module>.wasm` built from `tests/skills/<module>.py`."""
    source = SOURCES / f"{module}.py"
    key = hashlib.sha256(source.read_bytes() + TOOL_LOCK.read_bytes() + skill_type.encode()).hexdigest()[:20]
    target = cache_dir() / f"{module}-{key}.wasm"
    if target.exists():
        return target
    # Several test runs (e.g. worktrees) may share the cache: one build at a time, in one shared work dir.
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        return _build(module, skill_type, target)


def _build(module: str, skill_type: str, target: Path) -> Path:
    source = SOURCES / f"{module}.py"
    env_bin = tool_env() / "bin"
    if not (env_bin / "pharia-skill").exists():
        raise RuntimeError(f"no skill build environment at {tool_env()}: run `make test` (it creates one)")
    workdir = cache_dir() / "build"
    workdir.mkdir(exist_ok=True)  # keeps `wasi_deps` between builds
    shutil.copy(source, workdir / f"{module}.py")
    env = dict(os.environ, PATH=f"{env_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(
        [str(env_bin / "pharia-skill"), "build", module, "--no-interactive", "--skill-type", skill_type],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    built = workdir / f"{module}.wasm"
    if result.returncode != 0 or not built.exists():
        raise RuntimeError(f"building {module} failed:\n{result.stdout}\n{result.stderr}")
    with tempfile.NamedTemporaryFile(dir=cache_dir(), delete=False) as tmp:
        pass
    shutil.move(built, tmp.name)
    os.replace(tmp.name, target)
    return target
