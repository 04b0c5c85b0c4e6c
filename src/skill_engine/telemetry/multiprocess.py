"""The supervisor's side of metrics with several workers: one `METRICS_ADDRESS` for all of them.

prometheus-client's multiprocess mode (its documented way for pre-fork servers): workers write samples to
files in `PROMETHEUS_MULTIPROC_DIR`, this process reads and merges them at every scrape. Counters and
histograms of a worker that died stay in the sums (totals never go backwards); its live gauges are dropped
at the next scrape, since uvicorn's supervisor has no hook to call `mark_process_dead` when it replaces one.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger("skill_engine.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare() -> Path:
    """A fresh, private sample directory, announced to the workers through the environment."""
    directory = Path(tempfile.mkdtemp(prefix="skill-engine-metrics-"))
    os.environ[ENV] = str(directory)
    return directory


def cleanup(directory: Path) -> None:
    os.environ.pop(ENV, None)
    shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _LiveWorkers(Collector):
    """MultiProcessCollector that first forgets the live gauges of workers that no longer exist."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._inner = multiprocess.MultiProcessCollector(None, str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        for path in glob.glob(str(self.directory / "gauge_live*_*.db")):
            pid = Path(path).stem.rpartition("_")[2]
            if pid.isdigit() and not _alive(int(pid)):
                multiprocess.mark_process_dead(int(pid), str(self.directory))  # type: ignore[no-untyped-call]
        metrics: Iterable[Metric] = self._inner.collect()  # type: ignore[no-untyped-call]
        return metrics


def serve(address: str, directory: Path) -> WSGIServer | None:
    """Serves the merged samples of every worker on `address`; a port in use is logged, not fatal."""
    registry = CollectorRegistry()
    registry.register(_LiveWorkers(directory))
    host, _, port = address.rpartition(":")
    try:
        server, _ = start_http_server(int(port), host.strip("[]"), registry)
    except OSError as e:
        log.error("metrics listener on %s could not start: %s", address, e)
        return None
    log.info("Metrics of all workers on: %s", address)
    return server
