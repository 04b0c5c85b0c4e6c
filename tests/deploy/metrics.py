"""Reading an engine's Prometheus metrics the way a scraper does (prometheus_client's text parser)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


def total(metrics_url: str, sample_name: str) -> float:
    """The sum of every sample called `sample_name` (all label sets); 0 when there is none."""
    text = httpx.get(metrics_url, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == sample_name
    )


def compilations(metrics_url: str) -> float:
    return total(metrics_url, "kernel_skill_compile_duration_seconds_count")
