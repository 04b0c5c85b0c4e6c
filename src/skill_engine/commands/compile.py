"""`skill-engine compile`: precompile skills into the compiled cache before any engine needs them.

With no arguments it compiles every programmable skill of every configured namespace (the same
configuration as `serve`: config.toml, .env, environment) into `WASMTIME_CACHE_DIR`; with wasm files it
compiles those. Run it as an init container or a job against the volume the replicas share, and a new
replica serves its first request of a skill without compiling it. Artifacts are keyed by wasm digest and
engine fingerprint and carry a record that engines check before loading them (runtime/artifacts.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from skill_engine.config import ConfigError, Settings, load_settings
from skill_engine.errors import SkillLoadError
from skill_engine.runtime.compiler import ArtifactCache, Compiler
from skill_engine.skills.description import ChatSkill
from skill_engine.skills.registry import Registry, RegistryError
from skill_engine.skills.sources import (
    Recoverable,
    Unrecoverable,
    WatchedDirectory,
    config_client,
    make_registry,
    make_source,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("compile", help="precompile skills into the (shared) compiled cache")
    parser.add_argument("wasm", nargs="*", type=Path, help="wasm files (default: every configured skill)")
    parser.add_argument("--namespace", action="append", default=[], help="only this namespace (repeatable)")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class Wanted:
    label: str
    registry: Registry | None = None
    name: str = ""
    tag: str = "latest"
    file: Path | None = None


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    return asyncio.run(_compile_all(settings, args.wasm, set(args.namespace)))


def _compiler(settings: Settings) -> Compiler:
    from skill_engine.app import cache_directory

    directory = cache_directory(settings)
    return Compiler(ArtifactCache(directory, int(settings.wasmtime_cache_size_limit)))


async def _configured(settings: Settings, only: set[str]) -> tuple[list[Wanted], int]:
    """Every programmable skill the engine would serve, and how many namespaces could not be read."""
    wanted: list[Wanted] = []
    failures = 0
    async with config_client() as client:
        for namespace, config in sorted(settings.effective_namespaces().items()):
            if only and namespace not in only:
                continue
            source = make_source(namespace, config, client)
            registry = source.registry if isinstance(source, WatchedDirectory) else make_registry(config)
            try:
                description = await source.describe()
            except (Recoverable, Unrecoverable) as e:
                print(f"namespace {namespace}: {e}", file=sys.stderr)
                failures += 1
                continue
            for name, entry in sorted(description.skills_by_name.items()):
                if isinstance(entry, ChatSkill) or registry is None:
                    continue
                wanted.append(Wanted(f"{namespace}/{name}:{entry.tag}", registry, name, entry.tag))
    return wanted, failures


async def _wasm_of(skill: Wanted) -> bytes:
    if skill.file is not None:
        return await asyncio.to_thread(skill.file.read_bytes)
    assert skill.registry is not None
    try:
        pulled = await skill.registry.load(skill.name, skill.tag)
    except RegistryError as e:
        raise SkillLoadError(str(e)) from None
    if pulled is None:
        raise SkillLoadError(f"Skill {skill.label} not found in registry.")
    return pulled.wasm


async def _compile_all(settings: Settings, files: list[Path], only: set[str]) -> int:
    compiler = _compiler(settings)
    if files:
        wanted, failures = [Wanted(str(path), file=path) for path in files], 0
    else:
        wanted, failures = await _configured(settings, only)
    for skill in wanted:
        started = time.monotonic()
        try:
            wasm = await _wasm_of(skill)
            digest = hashlib.sha256(wasm).hexdigest()
            if compiler.cache.lookup(digest) is not None:
                print(f"up to date {skill.label} (sha256:{digest[:12]})")
                continue
            before = compiler.compilations
            artifact = await compiler.compiled(wasm, skill.label)
        except (SkillLoadError, OSError) as e:
            print(f"failed {skill.label}: {getattr(e, 'message', None) or e}", file=sys.stderr)
            failures += 1
            continue
        verb = "compiled" if compiler.compilations > before else "up to date"
        elapsed = time.monotonic() - started
        print(f"{verb} {skill.label} (sha256:{digest[:12]}) in {elapsed:.1f} s: {artifact}")
    if not wanted:
        print("no programmable skills to compile")
    return 1 if failures else 0
