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
EXAMPLES = ROOT / "examples"
TOOL_LOCK = SOURCES / "requirements.lock"


def tool_env() -> Path:
    return Path(os.environ.get("SKILL_BUILD_ENV", ROOT / ".venv-skill-build"))


def cache_dir() -> Path:
    path = Path(os.environ.get("SKILL_TEST_CACHE", platformdirs.user_cache_dir("skill-engine-tests")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_skill(module: str, skill_type: str = "skill", sources: Path = SOURCES) -> Path:
    """Returns the path of `<module>.wasm` built from `tests/skills/<module>.py` (or from `sources`)."""
    source = sources / f"{module}.py"
    key = hashlib.sha256(source.read_bytes() + TOOL_LOCK.read_bytes() + skill_type.encode()).hexdigest()[:20]
    target = cache_dir() / f"{module}-{key}.wasm"
    if target.exists():
        return target
    # Several test runs (e.g. worktrees) may share the cache: one build at a time, in one shared work dir.
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        return _build(module, skill_type, target, source)


def build_example(name: str) -> Path:
    """The example skill `examples/<name>/<name>.py`, built like a test skill (so examples keep working)."""
    return build_skill(name, sources=EXAMPLES / name)


def _build(module: str, skill_type: str, target: Path, source: Path) -> Path:
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


WIT = ROOT / "tests" / "wit"


def build_raw_skill(module: str, wit: Path, world: str, features: str | None = None) -> Path:
    """`tests/skills/<module>.py` built with plain componentize-py against the WIT package in `wit`.

    For worlds the SDK does not target (0.2, 0.4, 0.5). Cached like `build_skill`, keyed by the source,
    the WIT text, the world, the features and the tool lock.
    """
    source = SOURCES / f"{module}.py"
    digest = hashlib.sha256(source.read_bytes() + TOOL_LOCK.read_bytes())
    for path in sorted(wit.glob("*.wit")):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(f"{world}/{features}".encode())
    target = cache_dir() / f"{module}-{wit.name}-{digest.hexdigest()[:20]}.wasm"
    if target.exists():
        return target
    with (cache_dir() / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        workdir = Path(tempfile.mkdtemp(dir=cache_dir(), prefix="raw-"))
        try:
            shutil.copy(source, workdir / f"{module}.py")
            command = [str(tool_env() / "bin" / "componentize-py"), "-d", str(wit), "-w", world]
            if features:
                command += ["--features", features]
            command += ["componentize", module, "-o", str(workdir / "out.wasm")]
            env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
            result = subprocess.run(
                command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600
            )
            if result.returncode != 0:
                raise RuntimeError(f"building {module} failed:\n{result.stdout}\n{result.stderr}")
            os.replace(workdir / "out.wasm", target)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return target


def unstable_copy(wit: Path, version: str, feature: str) -> Path:
    """A copy of the WIT package in `wit` at another version with every world and interface gated behind
    `@unstable(feature = <feature>)`: how PhariaEngine ships 0.5 (the 0.4 text, version bumped, `alpha`)."""
    old = wit.name.removeprefix("skill@")
    parts = []
    for path in sorted(wit.glob("*.wit")):
        text = path.read_text().replace(f"pharia:skill@{old}.0", f"pharia:skill@{version}")
        gated = [
            f"@unstable(feature = {feature})\n{line}" if line.startswith(("world ", "interface ")) else line
            for line in text.splitlines()
        ]
        parts.append((path.name, "\n".join(gated) + "\n"))
    key = hashlib.sha256("".join(name + text for name, text in parts).encode()).hexdigest()[:12]
    target = cache_dir() / f"wit-{version}-{key}" / f"skill@{version.rsplit('.', 1)[0]}"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(dir=cache_dir()))
        for name, text in parts:
            (staging / name).write_text(text)
        target.parent.mkdir(exist_ok=True)
        try:
            os.replace(staging, target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run made it first
    return target
