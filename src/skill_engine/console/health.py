"""The console's health page data, read from the engine's Prometheus registry (the numbers `/metrics` shows)
plus what metrics cannot carry: version, uptime, cache budget and each namespace's last update and error.
"""

from __future__ import annotations

import math
import os
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from skill_engine.console.view import EngineView


def engine_version() -> str:
    try:
        return version("skill-engine")
    except PackageNotFoundError:
        return "0"


def metrics_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What `/metrics` serves: this engine's registry, or with WORKERS > 1 all workers' files merged."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return own
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return merged


def samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of the registry by sample name (e.g. `kernel_skill_execution_total`)."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def _total(values: list[tuple[dict[str, str], float]], by: str | None = None) -> Any:
    if by is None:
        return sum(value for _, value in values if not math.isnan(value))
    totals: dict[str, float] = {}
    for labels, value in values:
        totals[labels.get(by, "")] = totals.get(labels.get(by, ""), 0.0) + value
    return totals


def _gauge(found: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float | None:
    values = found.get(name)
    if not values or math.isnan(values[0][1]):
        return None
    return values[0][1]


def health_report(engine: EngineView, started_at: float) -> dict[str, Any]:
    found = samples(metrics_registry(engine.telemetry.metrics.registry))
    store, watcher = engine.store, engine.watcher
    executions = _total(found.get("kernel_skill_execution_total", []), by="status")
    tokens = _total(found.get("kernel_gen_ai_tokens_total", []), by="type")
    return {
        "version": engine_version(),
        "uptime_s": round(time.time() - started_at, 1),
        "in_flight": _gauge(found, "kernel_skill_invocations_in_flight"),
        "queued": _gauge(found, "kernel_skill_invocations_queued"),
        "cache": {
            "items": _gauge(found, "kernel_skill_cache_items"),
            "bytes": store.cache.weight,
            "capacity_bytes": store.cache.capacity,
            "compiling": store.precompiling(),
        },
        "executions": {status: int(count) for status, count in sorted(executions.items())},
        "tokens": {kind: int(count) for kind, count in sorted(tokens.items())},
        "http_requests": int(_total(found.get("kernel_http_requests_total", []))),
        "max_concurrent_skills": engine.settings.max_concurrent_skills * engine.settings.workers,
        "workers": engine.settings.workers,
        "worker": os.getpid(),
        "tracing": {
            "exporting": engine.telemetry.tracing.exporting,
            "recorded_executions": engine.telemetry.recorder is not None,
        },
        "namespaces": [
            {
                "name": name,
                "updated_at": watcher.updated_at.get(name),
                "error": store.namespace_error(name),
                "refused": store.refused(name),
                "skills": len(store.known(name)),
            }
            for name in sorted(watcher.sources)
        ],
    }
