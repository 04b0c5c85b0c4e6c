"""The default concurrency cap and worker count, from the memory and CPUs this process may use."""

from __future__ import annotations

import math
import os
from pathlib import Path

CONCURRENCY_MEMORY = 8 * 1024 * 1024
"""Memory budgeted per concurrent invocation for the default cap. Measured (bench/concurrency.py): an SDK
Python skill waiting on inference costs ~2 MiB of private memory (PSS), its untouched memory image is
shared copy-on-write with the compiled artifact; 8 MiB leaves room for skills that allocate more."""
CONCURRENCY_SHARE = 0.5
"""Share of the memory limit the default cap may spend on in-flight invocations (the rest: cached
skills, the process, bursts)."""
CONCURRENCY_MAX = 2048
"""Upper bound of the default: one thread each; beyond that, add workers or engines."""


def memory_available() -> int | None:
    """The container's memory limit (cgroup v2/v1) or the machine's physical memory, in bytes."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def allowed_cpus() -> list[int]:
    """The CPUs in this process's affinity mask, in order (empty where the platform cannot tell)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return []


def usable_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup CPU quota (v2 or v1), at least 1."""
    cpus = len(allowed_cpus()) or os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def cgroup_cpu_quota() -> float | None:
    """CPUs granted by the cgroup quota (`cpu.max` "200000 100000" → 2.0), None when unlimited or unknown."""
    try:
        quota, _, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:3]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text().strip()
        period = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text().strip()
        if int(quota) > 0:
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    return None


def default_concurrency() -> int:
    """MAX_CONCURRENT_SKILLS when unset: half the memory at 8 MiB per invocation, between 4 and 2048."""
    memory = memory_available()
    if memory is None:
        return 64
    return max(4, min(CONCURRENCY_MAX, int(memory * CONCURRENCY_SHARE) // CONCURRENCY_MEMORY))
