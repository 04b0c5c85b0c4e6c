"""When a worker is pinned to a CPU (skill_engine/affinity.py): the decision, for the machines it meets."""

from __future__ import annotations

import pytest

from skill_engine.affinity import cpu_for


@pytest.mark.parametrize(
    ("mode", "workers", "cpus", "quota", "expected"),
    [
        # The engine owns its CPUs: one worker per CPU, each on its own.
        ("auto", 2, [0, 1], None, {0: 0, 1: 1}),
        ("auto", 4, [2, 3, 6, 7], None, {0: 2, 1: 3, 2: 6, 3: 7}),
        ("auto", 2, [0, 1], 2.0, {0: 0, 1: 1}),
        # More workers than CPUs share them round robin.
        ("auto", 3, [0, 1], None, {0: 0, 1: 1, 2: 0}),
        # A quota below the CPUs it may run on (a pod on a bigger node): pinning would crowd CPU 0.
        ("auto", 2, list(range(16)), 2.0, {0: None, 1: None}),
        ("auto", 16, list(range(16)), 1.5, {0: None}),
        # Fewer workers than CPUs: the rest of the machine is someone else's, or for the guests.
        ("auto", 1, [0, 1], None, {0: None}),
        # One CPU: nothing to gain.
        ("auto", 1, [0], None, {0: None}),
        ("on", 1, [0], None, {0: None}),
        # `on` pins whatever the quota or the number of workers; `off` never does.
        ("on", 1, [4, 5], None, {0: 4}),
        ("on", 2, list(range(16)), 2.0, {0: 0, 1: 1}),
        ("off", 2, [0, 1], None, {0: None, 1: None}),
    ],
)
def test_which_cpu_a_worker_is_pinned_to(
    mode: str, workers: int, cpus: list[int], quota: float | None, expected: dict[int, int | None]
) -> None:
    assert {slot: cpu_for(slot, mode, workers, cpus, quota) for slot in expected} == expected
