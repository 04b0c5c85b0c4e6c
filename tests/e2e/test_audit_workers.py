"""The audit trail with WORKERS=2: both engine processes append to one AUDIT_LOG, rotated by size while
they write; every invocation leaves exactly one whole record (none split, none interleaved)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.engine import EngineProcess, engine_with_skills

RUN = "/v1/skills/my-team/probe/run"
REQUESTS = 120


def wait_for_both_workers(engine: EngineProcess, timeout: float = 180) -> None:
    """Health answers once one worker is up; the other may take longer on a loaded machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = {
            e.get("worker") for e in engine.log_entries() if "Application startup complete" in e["message"]
        }
        if len(started - {None}) >= 2:
            return
        time.sleep(0.2)
    raise AssertionError("the second worker did not start")


def post(url: str, i: int, timeout: float = 60) -> int:
    """On its own connection, so requests spread over both workers."""
    return httpx.post(url + RUN, json={"mode": "echo", "payload": i}, timeout=timeout).status_code


def test_two_workers_append_whole_records_across_rotations(
    tmp_path: Path, probe_wasm: Path, compiled_cache: Path
) -> None:
    trail = tmp_path / "audit" / "audit.jsonl"
    engine = engine_with_skills(
        tmp_path,
        {"probe": probe_wasm},
        {
            "WORKERS": "2",
            "WASMTIME_CACHE_DIR": str(compiled_cache),
            "AUDIT_LOG": str(trail),
            "AUDIT_LOG_MAX_BYTES": "8KiB",  # a record is ~500 bytes: rotates every ~16 records
            "AUDIT_LOG_BACKUPS": "100",
            "LOG_FORMAT": "json",
        },
    )
    engine.start(timeout=120)
    try:
        wait_for_both_workers(engine)
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert list(pool.map(lambda i: post(engine.url, i, timeout=600), range(2))) == [200, 200]
            statuses = list(pool.map(lambda i: post(engine.url, i), range(2, REQUESTS)))
        assert statuses == [200] * (REQUESTS - 2)
    finally:
        engine.stop()
    served = {
        entry.get("worker")
        for entry in engine.log_entries()
        if entry.get("path") == RUN and "status" in entry
    }
    assert len(served - {None}) == 2, "both workers served (and wrote) records"
    files = sorted(trail.parent.glob("audit.jsonl*"))
    assert len([f for f in files if f.suffix[1:].isdigit()]) >= 3, files  # rotated while both wrote
    records = []
    for file in files:
        if file.suffix == ".lock":
            continue
        for line in file.read_text().splitlines():
            records.append(json.loads(line))  # a split or interleaved record would not parse
    runs = [r for r in records if r["kind"] == "run"]
    assert len(runs) == REQUESTS
    assert {(r["namespace"], r["skill"], r["status"], r["subject"]) for r in runs} == {
        ("my-team", "probe", 200, "anonymous")
    }
