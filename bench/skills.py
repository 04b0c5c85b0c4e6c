"""Memory of many cached skills: engine RSS and PSS with 1, 10 and 100 distinct skills loaded.

The skills are the SDK-built `probe` plus a distinct custom section each (new bytes, new digest, same
code). Compiling 100 Python skills costs ~15 min of CPU, so the compiled artifact of the plain probe is
copied under each variant's cache key (with its record) instead: every skill still loads from its own
file (nothing shared between them in memory), exactly as if it had been compiled. One engine is measured
before any skill ran (the baseline) and after each count of skills ran once (they sit in the in-memory
cache); skills are added to its namespace directory as the count grows.

    .venv/bin/python -m bench.skills [--counts 1,10,100]
    .venv/bin/python -m bench.skills --short      # 1 and 3 skills, the check `make test` runs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.concurrency import memory
from bench.deploy import unique_component
from skill_engine.runtime import artifacts
from skill_engine.runtime.engine import FINGERPRINT
from tests.support.engine import EngineProcess
from tests.support.skills import build_skill

MIB = 1024 * 1024


def artifact(cache: Path, wasm: bytes) -> Path:
    return cache / f"{hashlib.sha256(wasm).hexdigest()}-{FINGERPRINT}.cwasm"


def seed(cache: Path, wasm: bytes, compiled: bytes) -> Path:
    """Files `compiled` as the artifact of `wasm`, with the record the engine checks before loading it."""
    path = artifact(cache, wasm)
    artifacts.write(path, hashlib.sha256(wasm).hexdigest(), compiled)
    return path


def measure(
    workdir: Path, variants: list[Path], counts: list[int], cache: Path
) -> dict[int, tuple[int, int]]:
    """(RSS, PSS) of one engine before any skill ran (key 0) and after each of the first `count` skills
    ran once, for each count: skills are added to the namespace directory as the counts grow."""
    directory = workdir / "skills"
    directory.mkdir(parents=True)
    engine = EngineProcess(
        workdir,
        {
            "NAMESPACES__BENCH__DIRECTORY": str(directory),
            "WASMTIME_CACHE_DIR": str(cache),
            "MEMORY_REQUEST": "64GiB",  # the cache budget counts component bytes (~48 MB each): hold all
            "LOG_LEVEL": "warning",
        },
    ).start(timeout=180)
    assert engine.process is not None
    rows = {}
    try:
        time.sleep(1.0)
        rows[0] = memory(engine.process.pid)
        ran = 0
        with httpx.Client(base_url=engine.url, timeout=600) as client:
            for count in counts:
                for path in variants[ran:count]:  # whole files only: a growing one would change meanwhile
                    shutil.copy(path, directory / f"{path.name}.partial")
                    os.replace(directory / f"{path.name}.partial", directory / path.name)
                deadline = time.monotonic() + 120
                while len(client.get("/v1/skills").json()) < count:  # the directory is watched
                    assert time.monotonic() < deadline, "skills did not appear"
                    time.sleep(0.2)
                for path in variants[ran:count]:
                    response = client.post(
                        f"/v1/skills/bench/{path.stem}/run", json={"mode": "echo", "payload": 1}
                    )
                    response.raise_for_status()
                ran = count
                cached = client.get("/cached_skills").json()
                assert len(cached) == count, cached
                time.sleep(1.0)
                rows[count] = memory(engine.process.pid)
    finally:
        engine.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="1,10,100")
    parser.add_argument("--cache-dir", type=Path, default=None, help="compiled artifacts (kept if given)")
    parser.add_argument("--short", action="store_true", help="1 and 3 skills (a smoke run)")
    args = parser.parse_args()
    counts = [1, 3] if args.short else sorted(int(c) for c in args.counts.split(","))

    workdir = Path(tempfile.mkdtemp(prefix="skill-engine-bench-"))
    cache = args.cache_dir or workdir / "compiled"
    cache.mkdir(parents=True, exist_ok=True)
    seeded: list[Path] = []
    try:
        probe = build_skill("probe").read_bytes()
        base = artifact(cache, probe)
        if not artifacts.verified(base, hashlib.sha256(probe).hexdigest()):  # compile the probe once
            (workdir / "compile").mkdir()
            (workdir / "compile" / "probe.wasm").write_bytes(probe)
            measure(workdir / "compiling", [workdir / "compile" / "probe.wasm"], [1], cache)
        compiled = base.read_bytes()
        variants = []
        for i in range(max(counts)):
            wasm = unique_component(probe)
            path = workdir / "variants" / f"s{i:03d}.wasm"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(wasm)
            seeded.append(seed(cache, wasm, compiled))
            variants.append(path)
        rows = measure(workdir / "engine", variants, counts, cache)
    finally:
        for path in seeded:  # the seeded copies are not worth keeping
            path.unlink(missing_ok=True)
            artifacts.record_path(path).unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)

    idle = rows.pop(0)
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
