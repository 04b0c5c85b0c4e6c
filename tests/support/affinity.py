"""What CPUs a process's threads may run on, read from /proc (independent of the engine's code)."""

from __future__ import annotations

import math
import os
from pathlib import Path


def cpu_list(text: str) -> set[int]:
    """`0-2,5` -> {0, 1, 2, 5}."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def thread_cpus(pid: int) -> dict[int, set[int]]:
    """Per thread id of process `pid`: the CPUs it may run on."""
    found: dict[int, set[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:
            continue  # the thread ended
        for line in status.splitlines():
            if line.startswith("Cpus_allowed_list:"):
                found[int(task.name)] = cpu_list(line.split(":", 1)[1])
    return found


def machine_cpus() -> set[int]:
    return set(os.sched_getaffinity(0))


def quota_below(cpus: int) -> bool:
    """Whether a cgroup v2 CPU quota grants fewer CPUs than `cpus`."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return False
    return quota != "max" and math.ceil(int(quota) / int(period)) < cpus


def expect_workers_pinned(workers: int) -> bool:
    """What `CPU_AFFINITY=auto` should do for `workers` workers here, worked out from the machine."""
    cpus = len(machine_cpus())
    return cpus > 1 and workers >= cpus and not quota_below(cpus)


def worker_cpu(pid: int) -> int | None:
    """The one CPU all threads of `pid` are pinned to, or None if they are not all pinned to one."""
    sets = {frozenset(cpus) for cpus in thread_cpus(pid).values()}
    if len(sets) == 1:
        (only,) = sets
        if len(only) == 1:
            return next(iter(only))
    return None
