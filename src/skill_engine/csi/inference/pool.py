"""The HTTP client of an inference backend: several small connection pools instead of one large one.

httpcore's pool scans all its connections and waiting requests whenever a request starts or ends, so
with a thousand calls in flight one pool pays O(n) per event and O(n²) per wave (~19% of the engine's
CPU with 500 calls waiting on a backend, bench/RESULTS.md). Requests go round robin to `SHARDS` clients,
each with an equal share of the limits, so every scan stays short; keep-alive works as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

SHARDS = 16


class ShardedClient:
    def __init__(
        self,
        timeout: httpx.Timeout,
        max_connections: int,
        max_keepalive_connections: int,
        shards: int = SHARDS,
    ) -> None:
        limits = httpx.Limits(
            max_connections=max(1, max_connections // shards),
            max_keepalive_connections=max(1, max_keepalive_connections // shards),
        )
        self.clients = [httpx.AsyncClient(timeout=timeout, limits=limits) for _ in range(shards)]
        self._next = itertools.cycle(self.clients)

    def post(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, httpx.Response]:
        return next(self._next).post(url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Coroutine[Any, Any, httpx.Response]:
        return next(self._next).get(url, **kwargs)

    def stream(self, method: str, url: str, **kwargs: Any) -> AbstractAsyncContextManager[httpx.Response]:
        return next(self._next).stream(method, url, **kwargs)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
