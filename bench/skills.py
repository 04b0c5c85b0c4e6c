"""Memory of many cached skills: engine RSS and PSS with 1, 10 and 100 distinct skills loaded.

The skills are the SDK-built `probe` plus a distinct custom section each (new bytes, new digest, same
code). Compiling 100 Python skills costs ~15 min of CPU, so the compiled artifact of the plain probe is
copied under each variant's cache key instead: every skill still loads from its own file (nothing shared
between them in memory), exactly as if it had been compiled. Each skill is called once so it sits in the
in-memory cache; the baseline is the same engine with no skill called, measured in the same run.

    .venv/bin/python -m bench.skills [--counts 1,10,100]
    .venv/bin/python -m bench.skills --short      # 1 and 3 skills, the check `make test` runs
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.concurrency import memory
from bench.deploy import unique_component
from skill_engine.runtime.engine import FINGERPRINT
from tests.support.engine import EngineProcess
from tests.support.skills import build_skill

MIB = 1024 * 1024


def artifact(cache: Path, wasm: bytes) -> Path:
    return cache / f"{hashlib.sha256(wasm).hexdigest()}-{FINGERPRINT}.cwasm"


def engine_rss(workdir: Path, skills: list[Path], cache: Path) -> tuple[int, int]:
    """(RSS, PSS) of an engine that has run each of `skills` once."""
    directory = workdir / "skills"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for path in skills:
        shutil.copy(path, directory / path.name)
    engine = EngineProcess(
        workdir,
        {
            "NAMESPACES__BENCH__DIRECTORY": str(directory),
            "WASMTIME_CACHE_DIR": str(cache),
            "MEMORY_REQUEST": "64GiB",  # the cache budget counts component bytes (~48 MB each): hold all
            "LOG_LEVEL": "warning",
        },
    ).start(timeout=180)
    try:
        with httpx.Client(base_url=engine.url, timeout=600) as client:
            for path in skills:
                response = client.post(
                    f"/v1/skills/bench/{path.stem}/run", json={"mode": "echo", "payload": 1}
                )
                response.raise_for_status()
            cached = client.get("/cached_skills").json()
            assert len(cached) == len(skills), cached
        time.sleep(1.0)
        assert engine.process is not None
        return memory(engine.process.pid)
    finally:
        engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="1,10,100")
    parser.add_argument("--cache-dir", type=Path, default=None, help="compiled artifacts (kept if given)")
    parser.add_argument("--short", action="store_true", help="1 and 3 skills (a smoke run)")
    args = parser.parse_args()
    counts = [1, 3] if args.short else [int(c) for c in args.counts.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-"))
    cache = args.cache_dir or workdir / "compiled"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        probe = workdir / "base" / "probe.wasm"
        probe.parent.mkdir(parents=True)
        shutil.copy(build_skill("probe"), probe)
        base = artifact(cache, probe.read_bytes())
        if not base.exists():  # compile the plain probe once
            engine_rss(workdir / "compile", [probe], cache)
        variants = []
        for i in range(max(counts)):
            wasm = unique_component(probe.read_bytes())
            path = workdir / "variants" / f"s{i:03d}.wasm"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(wasm)
            shutil.copy(base, artifact(cache, wasm))
            variants.append(path)
        idle = engine_rss(workdir / "idle", [], cache)
        rows = {count: engine_rss(workdir / str(count), variants[:count], cache) for count in counts}
        for path in variants:  # the seeded copies are not worth keeping
            artifact(cache, path.read_bytes()).unlink(missing_ok=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print("| cached skills | RSS MiB | PSS MiB | RSS per skill MiB | PSS per skill MiB |")
    print("|---|---|---|---|---|")
    print(f"| 0 (baseline) | {idle[0] / MIB:.0f} | {idle[1] / MIB:.0f} | | |")
    for count, (rss, pss) in rows.items():
        print(
            f"| {count} | {rss / MIB:.0f} | {pss / MIB:.0f} | {(rss - idle[0]) / count / MIB:.1f} "
            f"| {(pss - idle[1]) / count / MIB:.1f} |"
        )
    largest = max(counts)
    rss, _ = rows[largest]
    print(f"\nratio ({largest} skills / baseline RSS): {rss / idle[0]:.2f}x; goal 100 skills <= 1536 MiB RSS")


if __name__ == "__main__":
    main()
