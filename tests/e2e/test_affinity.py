"""`CPU_AFFINITY` on a real engine: which CPUs its threads may run on, read from /proc.

The suite's machine has 2 CPUs and no CPU quota; elsewhere the expectations are worked out from what
the machine grants this test, and a one-CPU machine has nothing to pin.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.affinity import machine_cpus, thread_cpus
from tests.support.engine import engine_with_skills

pytestmark = pytest.mark.skipif(len(machine_cpus()) < 2, reason="one CPU: nothing to pin")


def run_once(url: str) -> None:
    response = httpx.post(f"{url}/v1/skills/my-team/probe/run", json={"mode": "echo"}, timeout=600)
    assert response.status_code == 200, response.text


def test_on_pins_every_thread_of_a_single_engine_to_one_cpu(tmp_path: Path, probe_wasm: Path) -> None:
    engine = engine_with_skills(tmp_path, {"probe": probe_wasm}, {"CPU_AFFINITY": "on"})
    engine.start(timeout=120)
    try:
        run_once(engine.url)  # worker, spare-instance and compiler threads exist now
        assert engine.process is not None
        threads = thread_cpus(engine.process.pid)
        assert len(threads) > 3
        assert {frozenset(cpus) for cpus in threads.values()} == {frozenset({min(machine_cpus())})}
        assert "pinned to CPU" in engine.logs()
    finally:
        engine.stop()


@pytest.mark.parametrize("setting", [{}, {"CPU_AFFINITY": "off"}])
def test_one_worker_with_cpus_to_spare_is_not_pinned(
    tmp_path: Path, probe_wasm: Path, setting: dict[str, str]
) -> None:
    """`auto` (the default) with fewer workers than CPUs, and `off`: the threads may use every CPU."""
    engine = engine_with_skills(tmp_path, {"probe": probe_wasm}, {"WORKERS": "1", **setting})
    engine.start(timeout=120)
    try:
        run_once(engine.url)
        assert engine.process is not None
        threads = thread_cpus(engine.process.pid)
        assert all(cpus == machine_cpus() for cpus in threads.values()), threads
        assert "pinned to CPU" not in engine.logs()
    finally:
        engine.stop()
