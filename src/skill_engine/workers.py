"""`WORKERS` > 1: several engine processes on one port, under uvicorn's own multiprocess supervisor.

The supervisor (this process) binds the socket, serves the merged metrics of all workers on
`METRICS_ADDRESS` (telemetry/multiprocess.py) and lets uvicorn's `Multiprocess` start the workers, replace
one that dies or stops answering its health pings, and pass SIGTERM/SIGINT on; each worker then drains like
a single engine does (shutdown.py) and exits 0. The only thing added to uvicorn's supervisor is what each
worker runs: a full engine built from the same configuration, with the admission caps split
(`per_worker`) and the worker id (its pid) on every log line. Workers share the on-disk compiled cache
under a cross-process lock (runtime/cache_lock.py), so a skill compiles once per host
(docs/decisions/0006-worker-processes.md).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import multiprocess as uvicorn_multiprocess

from skill_engine.config import ConfigError, Settings, load_settings
from skill_engine.telemetry import multiprocess as metrics_multiprocess
from skill_engine.telemetry.logs import configure_logging

log = logging.getLogger("skill_engine")

HEALTHCHECK_TIMEOUT = 30.0
"""Seconds a worker may take to answer the supervisor's ping before it counts as hung and is replaced.
uvicorn's 5 s is too short for a worker whose event loop competes with many busy guest threads."""


def per_worker(settings: Settings, workers: int) -> Settings:
    """Each worker's share of the host-wide admission caps, so they mean the same for any `WORKERS`.

    Every cap is divided evenly, rounded down (at least 1 slot): the workers together never admit more
    than the operator configured, at the price of up to `WORKERS - 1` slots less when it does not divide.
    `MAX_CONNECTIONS` is the exception, a cap per worker: the kernel hands connections to whichever
    worker accepts first, so 1,000 connections at once against 2 workers sharing 1,024 got up to 19% 503s
    (bench.concurrency --workers 2), and file descriptors are limited per process anyway.
    """
    if workers == 1:
        return settings
    per_namespace = settings.max_concurrent_skills_per_namespace
    stuck = settings.max_stuck_skills
    reserved = settings.reserved_skill_slots
    return settings.model_copy(
        update={
            "max_concurrent_skills": max(1, settings.max_concurrent_skills // workers),
            "max_queued_skills": settings.max_queued_skills // workers,
            "max_stuck_skills": None if stuck is None else stuck // workers,
            "reserved_skill_slots": None if reserved is None else reserved // workers,
            "max_input_bytes_in_flight": settings.max_input_bytes_in_flight // workers,
            "csi_concurrency": max(1, settings.csi_concurrency // workers),
            "max_concurrent_skills_per_namespace": (
                None if per_namespace is None else max(1, per_namespace // workers)
            ),
        }
    )


_slot_holders: list[WorkerProcess] = []
"""Supervisor side: the worker holding each slot (a dead one's slot is free)."""


class WorkerProcess(uvicorn_multiprocess.Process):
    """uvicorn's worker process, running a whole engine with the engine's graceful shutdown.

    Each has a slot, 0 to WORKERS - 1, the CPU it is pinned to (skill_engine/affinity.py): a worker that
    replaces a dead one takes its slot. Slots are handed out in the supervisor, where uvicorn creates
    and starts one worker at a time."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        holders = _slot_holders
        self.slot = next((i for i, h in enumerate(holders) if not h.process.is_alive()), len(holders))
        if self.slot == len(holders):
            holders.append(self)
        else:
            holders[self.slot] = self

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover (child)
        sys.exit(self._serve(sockets))

    def _serve(self, sockets: list[socket.socket] | None) -> int:
        from skill_engine import shutdown
        from skill_engine.app import create_app
        from skill_engine.edge import EdgeLimits

        try:
            settings = load_settings()
        except ConfigError as e:
            print(e, file=sys.stderr)
            return STARTUP_FAILURE
        configure_logging(settings.log_level, settings.log_format, worker=str(os.getpid()))
        from skill_engine import affinity

        affinity.pin(self.slot, settings.cpu_affinity, settings.workers)  # before the engine's threads
        settings = per_worker(settings, settings.workers)
        try:
            app = create_app(settings)
        except Exception:
            log.exception("worker could not start")
            return STARTUP_FAILURE
        host, port = settings.host_port
        limits = EdgeLimits.from_settings(settings)
        config = shutdown.server_config(app, host, port, settings.shutdown_grace, limits)
        runtime = app.state.engine.runtime
        server = shutdown.GracefulServer(config, runtime, settings.shutdown_grace)
        self._server = server  # what the supervisor's health pings report on
        threading.Thread(target=self.always_pong, daemon=True).start()
        server.run(sockets)
        if not server.started:
            return STARTUP_FAILURE
        return shutdown.finish(server, runtime)


def serve(settings: Settings) -> int:
    """The supervisor: binds the port once, starts `settings.workers` workers, returns the exit code."""
    host, port = settings.host_port
    directory = metrics_multiprocess.prepare()
    try:
        config = uvicorn.Config(
            "skill_engine.app:create_app",  # never loaded here: each worker builds its own app
            host=host,
            port=port,
            workers=settings.workers,
            log_config=None,
            timeout_worker_healthcheck=int(HEALTHCHECK_TIMEOUT),
        )
        sock = config.bind_socket()
        metrics = metrics_multiprocess.serve(settings.metrics_address, directory)
        log.info("Serving with %d worker processes", settings.workers)
        # uvicorn's supervisor creates its workers from this module-level name at every (re)start.
        uvicorn_multiprocess.Process = WorkerProcess  # type: ignore[misc]
        supervisor = uvicorn_multiprocess.Multiprocess(config, sockets=[sock])
        supervisor.run()
        if metrics is not None:
            metrics.shutdown()
            metrics.server_close()
        sock.close()
        failed = any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
        return 1 if failed else 0
    finally:
        metrics_multiprocess.cleanup(directory)
