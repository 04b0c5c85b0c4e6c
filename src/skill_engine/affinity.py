"""Each worker process on a CPU of its own (`CPU_AFFINITY`).

Every invocation maps a fresh instance's memory and unmaps it when the invocation ends. When the threads
of one process run on several CPUs, each unmap makes the kernel interrupt the other CPUs to flush their
TLBs, and a thread woken on another CPU needs an interrupt too; in a virtual machine each of those
interrupts exits to the hypervisor. On this project's 2-vCPU box a single engine with its threads spread
over both CPUs spent more than a quarter of its CPU there and ~25 thread switches per `/run` at
concurrency 16. Pinned to one CPU, the same engine served 25% more requests with 37% less CPU, and 8
message streams twice the events per second (bench/RESULTS.md, "Session 7"). A worker's
Python runs under one GIL anyway: the cores an engine uses come from `WORKERS`.

`auto` pins only when the engine may assume it owns the CPUs: there are at least as many workers as CPUs
in its affinity mask, and no cgroup CPU quota below that count. In a container limited by quota on a
larger host (the usual Kubernetes pod), every pod would otherwise pin to the same first CPUs. `on` pins
worker `i` to the `i`-th CPU of the mask (modulo its size) regardless; `off` never pins, e.g. for skills
that compute much in the guest with fewer workers than CPUs.
"""

from __future__ import annotations

import logging
import math
import os

from skill_engine.config.capacity import allowed_cpus, cgroup_cpu_quota

log = logging.getLogger("skill_engine")


def cpu_for(slot: int, mode: str, workers: int, cpus: list[int], quota: float | None) -> int | None:
    """The CPU worker `slot` is pinned to, or None; pure, for the decision alone."""
    if mode == "off" or len(cpus) < 2:
        return None  # one CPU: nothing to gain
    if mode == "auto":
        if workers < len(cpus):
            return None
        if quota is not None and math.ceil(quota) < len(cpus):
            return None
    return cpus[slot % len(cpus)]


def pin(slot: int, mode: str, workers: int) -> int | None:
    """Pins the calling thread, and so every thread it starts later, to worker `slot`'s CPU; call before
    the engine starts threads. Returns the CPU, or None when not pinned."""
    cpus = allowed_cpus()
    cpu = cpu_for(slot, mode, workers, cpus, cgroup_cpu_quota())
    if cpu is None:
        if mode != "off" and len(cpus) > 1:
            log.debug("CPU_AFFINITY=%s: not pinned (%d workers, %d CPUs)", mode, workers, len(cpus))
        return None
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as e:  # e.g. a sandbox that forbids it: run unpinned
        log.warning("could not pin to CPU %d: %s", cpu, e)
        return None
    log.info("pinned to CPU %d (CPU_AFFINITY=%s)", cpu, mode)
    return cpu
