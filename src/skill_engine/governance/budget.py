"""Inference token budgets per namespace (`tokens-per-minute`).

A token bucket per namespace that refills continuously at the per-minute rate and holds at most one
minute's worth. A call is admitted while the bucket is not empty; its usage (known only afterwards) is
taken from the bucket, which may go below zero: then calls are refused with 429 until it refills.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping


class _Bucket:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.level = float(per_minute)
        self.at = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(float(self.per_minute), self.level + (now - self.at) * self.per_minute / 60.0)
        self.at = now


class TokenBudgets:
    def __init__(self, per_minute: Mapping[str, int] | None = None) -> None:
        self._buckets = {ns: _Bucket(n) for ns, n in (per_minute or {}).items()}
        self._lock = threading.Lock()

    def per_minute(self, namespace: str) -> int:
        return self._buckets[namespace].per_minute

    def retry_after(self, namespace: str | None) -> int | None:
        """Seconds until the namespace's bucket is not empty any more; None while it is not empty."""
        bucket = self._buckets.get(namespace) if namespace else None
        if bucket is None:
            return None
        with self._lock:
            bucket.refill(time.monotonic())
            if bucket.level > 0:
                return None
            wait = (1.0 - bucket.level) * 60.0 / bucket.per_minute
        return max(1, math.ceil(wait))

    def spend(self, namespace: str | None, tokens: int) -> None:
        bucket = self._buckets.get(namespace) if namespace else None
        if bucket is None or tokens <= 0:
            return
        with self._lock:
            bucket.refill(time.monotonic())
            bucket.level -= tokens
