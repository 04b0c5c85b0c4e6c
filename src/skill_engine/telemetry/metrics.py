"""Prometheus metrics (engine-spec §6.2) on their own listener (`METRICS_ADDRESS`, any GET path).

Each engine owns a `CollectorRegistry`, so several engines in one process never share counters. Names,
labels and buckets of the `kernel_*` metrics are PhariaEngine's; the gauges and the compile histogram after
them are the signals an autoscaler needs (in-flight invocations, invocations waiting for a worker thread,
compile durations).

With `WORKERS` > 1 (skill_engine/workers.py) prometheus-client runs in multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR` set by the supervisor): every worker writes its samples to memory-mapped files
and the supervisor alone serves `METRICS_ADDRESS`, summing counters and histograms over all workers. Gauges
read at scrape time cannot cross processes, so each worker then copies them into its files every
`GAUGE_REFRESH` seconds: in-flight and queued are summed over live workers, cached items is the maximum.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server

log = logging.getLogger("skill_engine.metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0)
COMPILE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)

# Binding-level CSI function names → the `function` label values of `kernel_csi_requests_total`.
CSI_FUNCTIONS = {
    "chat": "chat",
    "chat-v2": "chat",
    "complete": "complete",
    "complete-v2": "complete",
    "complete-all": "complete",
    "chat-stream": "chat_stream",
    "chat-stream-v2": "chat_stream",
    "completion-stream": "completion_stream",
    "explain": "explain",
    "chunk": "chunk",
    "chunk-with-offsets": "chunk",
    "select-language": "select_language",
    "search": "search",
    "documents": "documents",
    "document-metadata": "document_metadata",
    "invoke-tool": "invoke_tool",
    "list-tools": "list_tools",
}

GAUGE_REFRESH = 0.2
"""Seconds between copies of the scrape-time gauges into the multiprocess files (WORKERS > 1)."""

# Prometheus clients in Rust (PhariaEngine's) expose no `_created` series; neither do we.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


M = TypeVar("M", Counter, Gauge, Histogram)


class Children(Generic[M]):
    """`metric.labels(*values)` remembered per label values, for the samples of every request.

    prometheus-client validates, converts and locks at each `labels()` call (~4% of the host's time in a
    trivial `/run`, with five labelled samples per request); the child it returns is the same object every
    time, so it can be kept. Races only create a child twice, and prometheus-client hands out one anyway.
    """

    __slots__ = ("_children", "_labels")

    def __init__(self, metric: M) -> None:
        self._labels: Callable[..., M] = metric.labels
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._labels(*values)
        return child


class Metrics:
    def __init__(self) -> None:  # long: one declaration per metric, the registry's table of contents
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "kernel_http_requests_total",
            "HTTP requests to a matched route, by method, route template and status.",
            ["method", "path", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "kernel_http_requests_duration_seconds",
            "Duration of HTTP requests to a matched route.",
            ["method", "path", "status"],
            buckets=BUCKETS,
            registry=r,
        )
        self.executions = Counter(
            "kernel_skill_execution_total",
            "Skill executions after a successful fetch, by outcome (ok, logic_error, runtime_error).",
            ["namespace", "name", "status"],
            registry=r,
        )
        self.execution_duration = Histogram(
            "kernel_skill_execution_duration_seconds",
            "Duration of skill executions after a successful fetch.",
            ["namespace", "name", "status"],
            buckets=BUCKETS,
            registry=r,
        )
        self.fetch_duration = Histogram(
            "kernel_skill_fetch_duration_seconds",
            "Time to resolve a skill to a runnable component (cache, registry, compile), failures included.",
            ["namespace", "name"],
            buckets=BUCKETS,
            registry=r,
        )
        self.csi_requests = Counter(
            "kernel_csi_requests_total",
            "CSI requests by function; a batch counts as its size.",
            ["function"],
            registry=r,
        )
        self.cache_items = Gauge(
            "kernel_skill_cache_items",
            "Skills in the in-memory cache.",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.in_flight = Gauge(
            "kernel_skill_invocations_in_flight",
            "Skill invocations admitted and not yet finished (running or waiting for a worker thread).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queued = Gauge(
            "kernel_skill_invocations_queued",
            "Skill invocations waiting for a free worker thread (MAX_CONCURRENT_SKILLS reached).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.stuck = Gauge(
            "kernel_skill_threads_stuck",
            "Worker threads still running a guest that was stopped (blocked in WASI); see MAX_STUCK_SKILLS.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.compile_duration = Histogram(
            "kernel_skill_compile_duration_seconds",
            "Compilation of a skill to native code (cache misses only; artifacts are cached on disk).",
            ["namespace", "name"],
            buckets=COMPILE_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "kernel_gen_ai_tokens_total",
            "Tokens of inference calls made by skills, by skill, model and type (input, output).",
            ["namespace", "name", "model", "type"],
            registry=r,
        )
        # Per namespace (docs/governance.md); label values only from configured namespaces.
        self.namespaces: frozenset[str] = frozenset()
        self.namespace_in_flight = Gauge(
            "kernel_namespace_invocations_in_flight",
            "Skill invocations of the namespace admitted and not yet finished.",
            ["namespace"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.namespace_queued = Gauge(
            "kernel_namespace_invocations_queued",
            "Skill invocations of the namespace waiting for admission.",
            ["namespace"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.namespace_rejected = Counter(
            "kernel_namespace_rejected_total",
            "Skill invocations of the namespace turned away by admission (429).",
            ["namespace"],
            registry=r,
        )
        self.namespace_cpu = Counter(
            "kernel_namespace_cpu_seconds_total",
            "CPU seconds used by the namespace's skills on their worker threads.",
            ["namespace"],
            registry=r,
        )
        self.namespace_tokens = Counter(
            "kernel_namespace_tokens_total",
            "Inference tokens (prompt and completion) used by the namespace, skills and CSI over HTTP.",
            ["namespace"],
            registry=r,
        )
        self.namespace_denials = Counter(
            "kernel_namespace_denials_total",
            "CSI calls of the namespace refused by its policy (model, collection, MCP server, tool) or its "
            "token budget (tokens).",
            ["namespace", "kind"],
            registry=r,
        )
        self.refused_skills = Gauge(
            "kernel_namespace_refused_skills",
            "Entries of a namespace's description not served because their name or tag is not allowed.",
            ["namespace"],
            registry=r,
            multiprocess_mode="livemax",
        )
        # The samples taken at every request, their children remembered (`Children`).
        self.http_requests_child = Children(self.http_requests)
        self.http_duration_child = Children(self.http_duration)
        self.executions_child = Children(self.executions)
        self.execution_duration_child = Children(self.execution_duration)
        self._namespace_in_flight_child = Children(self.namespace_in_flight)
        self._namespace_queued_child = Children(self.namespace_queued)
        self._namespace_cpu_child = Children(self.namespace_cpu)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.multiprocess = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        """A worker of several: the supervisor serves the aggregate, this process only writes samples."""
        self._gauges: list[tuple[Gauge, Callable[[], float]]] = []
        self._stop_refresh = threading.Event()

    def observe_gauges(
        self,
        cache_items: Callable[[], int],
        in_flight: Callable[[], int],
        queued: Callable[[], int],
        stuck: Callable[[], int] = lambda: 0,
    ) -> None:
        """Gauges read at scrape time from the engine's own state (no bookkeeping on the hot path)."""
        self._gauges = [
            (self.cache_items, _safe(cache_items)),
            (self.in_flight, _safe(in_flight)),
            (self.queued, _safe(queued)),
            (self.stuck, _safe(stuck)),
        ]
        if not self.multiprocess:
            for gauge, read in self._gauges:
                gauge.set_function(read)

    def csi_request(self, function: str, count: int = 1) -> None:
        """Counts `count` requests of a CSI function (WIT `chunk-with-offsets`, HTTP `chunk_with_offsets`)."""
        function = function.replace("_", "-")
        label = CSI_FUNCTIONS.get(function, function.replace("-", "_"))
        self.csi_requests.labels(label).inc(count)

    def count_tokens(self, skill: tuple[str, str], model: str, input: int, output: int) -> None:
        namespace, name = skill
        self.tokens.labels(namespace, name, model, "input").inc(input)
        self.tokens.labels(namespace, name, model, "output").inc(output)

    def _known(self, namespace: str | None) -> bool:
        return namespace is not None and namespace in self.namespaces

    def namespace_load(self, namespace: str, running: int, queued: int) -> None:
        if self._known(namespace):
            self._namespace_in_flight_child(namespace).set(running)
            self._namespace_queued_child(namespace).set(queued)

    def namespace_rejection(self, namespace: str) -> None:
        if self._known(namespace):
            self.namespace_rejected.labels(namespace).inc()

    def namespace_cpu_seconds(self, namespace: str, seconds: float) -> None:
        if self._known(namespace) and seconds > 0:
            self._namespace_cpu_child(namespace).inc(seconds)

    def namespace_token_usage(self, namespace: str | None, tokens: int) -> None:
        if self._known(namespace) and tokens > 0:
            assert namespace is not None
            self.namespace_tokens.labels(namespace).inc(tokens)

    def namespace_denial(self, namespace: str | None, kind: str) -> None:
        if self._known(namespace):
            assert namespace is not None
            self.namespace_denials.labels(namespace, kind).inc()

    def compiled(self, label: str, seconds: float) -> None:
        namespace, _, name = label.partition("/")
        self.compile_duration.labels(namespace, name).observe(seconds)

    def serve(self, address: str) -> None:
        """Starts the scrape listener on a daemon thread; a port in use is logged, not fatal.

        A worker of several starts no listener (the supervisor serves `address`), only the gauge copier.
        """
        if self.multiprocess:
            self._stop_refresh.clear()
            threading.Thread(target=self._refresh_gauges, name="metrics-gauges", daemon=True).start()
            return
        host, _, port = address.rpartition(":")
        try:
            self._server, self._thread = start_http_server(int(port), host.strip("[]"), self.registry)
        except OSError as e:
            log.error("metrics listener on %s could not start: %s", address, e)
            return
        log.info("Metrics on: %s", address)

    def _refresh_gauges(self) -> None:
        while not self._stop_refresh.wait(GAUGE_REFRESH):
            for gauge, read in self._gauges:
                gauge.set(read())

    def stop(self) -> None:
        self._stop_refresh.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _safe(read: Callable[[], int]) -> Callable[[], float]:
    def value() -> float:
        # Scrapes run on the listener's thread while the engine mutates its sets: retry a torn read.
        for _ in range(3):
            try:
                return float(read())
            except RuntimeError:
                continue
        return float("nan")

    return value
