"""Each benchmark in bench/ still runs: its `--short` mode end to end, printing its table and ratio.

Not timed (the numbers are in bench/RESULTS.md); this only guards the scripts against rot.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(module: str, compiled_cache: Path, *args: str) -> str:
    env = {**os.environ, "WASMTIME_CACHE_DIR": str(compiled_cache)}
    result = subprocess.run(
        [sys.executable, "-m", module, "--short", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.timeout(1000)
def test_overhead_short(probe_wasm: Path, compiled_cache: Path) -> None:
    out = run_bench("bench.overhead", compiled_cache)
    assert "| WORKERS | concurrency |" in out
    assert "ratio = engine req/s / native req/s" in out


@pytest.mark.timeout(1000)
def test_concurrency_short(probe_wasm: Path, compiled_cache: Path) -> None:
    out = run_bench("bench.concurrency", compiled_cache)
    assert "| 16 |" in out
    assert "ratio = engine time / native time" in out
    assert "| CPU ms per call engine/native | client+backend CPU ms per call engine/native round |" in out


@pytest.mark.timeout(1000)
def test_streaming_short(streamer_wasm: Path, compiled_cache: Path) -> None:
    out = run_bench("bench.streaming", compiled_cache)
    assert "| through the engine | 2 |" in out
    assert "2 stream(s), engine / direct" in out


@pytest.mark.timeout(1000)
def test_skills_short(probe_wasm: Path, compiled_cache: Path) -> None:
    out = run_bench("bench.skills", compiled_cache, "--cache-dir", str(compiled_cache))
    assert "| 3 |" in out
    assert "ratio (3 skills / baseline RSS)" in out


@pytest.mark.timeout(1000)
def test_fair_sharing_short(probe_wasm: Path, compiled_cache: Path) -> None:
    out = run_bench("bench.fair_sharing", compiled_cache)
    assert "4 slots, flood of 8 x 0.3 s, 6 trickle requests" in out
    header = "| reserved slots | trickle p95 unloaded ms | under the flood ms | ratio |"
    rows = out[out.index(header) :].splitlines()[2:4]
    assert [row.split("|")[1].strip() for row in rows] == ["0", "1"]


@pytest.mark.timeout(1000)
def test_boundary_short(probe_wasm: Path, streamer_wasm: Path, compiled_cache: Path) -> None:
    out = run_bench("bench.boundary", compiled_cache)
    assert "| workload | stock calls ms | engine calls ms | ratio | µs per stream event |" in out
    assert "| stream (20 events) |" in out
    assert "ratio = engine calls / stock calls" in out


def test_tables_short(probe_wasm: Path, compiled_cache: Path) -> None:
    """The probe skill's core modules and their element segments, read from the binary. Every SDK-built
    skill links CPython as a shared library whose segments go into an imported table."""
    out = run_bench("bench.tables", compiled_cache)
    assert "| core module | name | bytes | element segments | deferred | eager |" in out
    assert "libpython3.12.so" in out
    assert "function references are initialised at every instantiation" in out
    assert "| segment into | instantiate ms | ratio |" in out


def test_tables_functions_needs_wasmtime_alone(tmp_path: Path) -> None:
    """`--functions` is how wasmtime releases are compared, from a scratch environment holding only
    `wasmtime`: here an interpreter without site-packages that sees the repository and wasmtime alone."""
    from importlib.metadata import version

    import wasmtime

    package = Path(wasmtime.__file__).parent
    (tmp_path / "wasmtime").symlink_to(package)
    for info in package.parent.glob("wasmtime-*.dist-info"):
        (tmp_path / info.name).symlink_to(info)
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(tmp_path)!r}]; import runpy; "
        "sys.argv = ['tables', '--functions', '300']; runpy.run_module('bench.tables', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"wasmtime {version('wasmtime')}" in result.stdout
    assert "| an imported table, imported offset (as componentize-py) |" in result.stdout
    assert "| core module | name |" not in result.stdout  # no component was read
