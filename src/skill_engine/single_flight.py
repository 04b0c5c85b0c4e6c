"""Share one in-flight call among concurrent callers with the same key.

The IAM check of a token, the load of a skill, the compilation of a component and the download of a
tokenizer each run once however many requests want them at the same moment. The call runs as a task of its
own: a caller that goes away (client disconnected) stops waiting without cancelling it for the others.
The key is forgotten as soon as the call ends, so a failure is not remembered: the next caller tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, call: Callable[[], Coroutine[Any, Any, V]]) -> V:
        """The result of the call in flight for `key`, starting `call()` if there is none."""
        future = self._calls.get(key)
        if future is None:
            future = asyncio.ensure_future(call())
            self._calls[key] = future
            future.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(future)

    def _forget(self, key: K, done: asyncio.Future[V]) -> None:
        if self._calls.get(key) is done:
            del self._calls[key]
        if not done.cancelled():
            done.exception()  # retrieved: a failure nobody waits for any more is not reported as lost

    def in_flight(self, key: K) -> bool:
        return key in self._calls

    def __len__(self) -> int:
        return len(self._calls)
