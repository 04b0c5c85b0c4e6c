"""Admission control: at most `MAX_CONCURRENT_SKILLS` invocations run at once (optionally fewer per
namespace); beyond that, requests wait in a bounded queue (`MAX_QUEUED_SKILLS`) for at most
`SKILL_QUEUE_TIMEOUT`, and are then turned away with 429 and `Retry-After` instead of piling up memory.

A slot is held until the worker thread of the invocation has really finished (also for a guest that is
abandoned at its deadline while blocked in WASI), so the thread pool never holds more than the cap.
Runs on the event loop only; no locks needed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from skill_engine.errors import ExecutionError

RETRY_AFTER_SECONDS = 1


class Overloaded(ExecutionError):
    status = 429
    metric_status = "overloaded"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The Kernel is currently overloaded: {detail} Please try again later, if the situation persists "
            "you may want to contact the operators."
        )
        self.headers = {"retry-after": str(RETRY_AFTER_SECONDS)}


@dataclass
class _Waiter:
    namespace: str
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Admission:
    def __init__(
        self,
        limit: int,
        queue_length: int = 256,
        queue_timeout: float = 10.0,
        per_namespace: int | None = None,
    ) -> None:
        self.limit = limit
        self.queue_length = queue_length
        self.queue_timeout = queue_timeout
        self.per_namespace = per_namespace
        self.active = 0
        self._by_namespace: dict[str, int] = {}
        self._waiting: deque[_Waiter] = deque()
        self.rejected = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _can_run(self, namespace: str) -> bool:
        if self.active >= self.limit:
            return False
        return self.per_namespace is None or self._by_namespace.get(namespace, 0) < self.per_namespace

    def _take(self, namespace: str) -> None:
        self.active += 1
        self._by_namespace[namespace] = self._by_namespace.get(namespace, 0) + 1

    def check(self, namespace: str) -> None:
        """Raises Overloaded if a request for `namespace` would be turned away at once (queue full).

        For message streams, which must answer 429 before the stream opens; waiting happens later.
        """
        if not self._can_run(namespace) and len(self._waiting) >= self.queue_length:
            self.rejected += 1
            raise Overloaded(self._why(namespace, queued=False))

    async def acquire(self, namespace: str) -> None:
        """Returns once the invocation may run; raises Overloaded when queue or waiting time is exhausted."""
        # Waiters still queued are all blocked (release grants every runnable one), so this is fair.
        if self._can_run(namespace):
            self._take(namespace)
            return
        if len(self._waiting) >= self.queue_length:
            self.rejected += 1
            raise Overloaded(self._why(namespace, queued=False))
        waiter = _Waiter(namespace)
        self._waiting.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.granted), self.queue_timeout)
        except (TimeoutError, asyncio.CancelledError) as e:
            if waiter.granted.done() and not waiter.granted.cancelled():
                if isinstance(e, TimeoutError):
                    return  # granted at the very last moment: keep the slot
                self.release(namespace)  # granted, but the caller went away
            else:
                waiter.granted.cancel()
                self._waiting.remove(waiter)
            if isinstance(e, asyncio.CancelledError):
                raise
            self.rejected += 1
            raise Overloaded(self._why(namespace, queued=True)) from None

    def release(self, namespace: str) -> None:
        self.active -= 1
        left = self._by_namespace[namespace] - 1
        if left:
            self._by_namespace[namespace] = left
        else:
            del self._by_namespace[namespace]
        for waiter in list(self._waiting):
            if waiter.granted.done():
                continue
            if self._can_run(waiter.namespace):
                self._waiting.remove(waiter)
                self._take(waiter.namespace)
                waiter.granted.set_result(None)

    def _why(self, namespace: str, queued: bool) -> str:
        if self.active < self.limit and self.per_namespace is not None:
            limit = f"namespace '{namespace}' already runs its maximum of {self.per_namespace} skills"
        else:
            limit = f"all {self.limit} skill execution slots are busy"
        if queued:
            return f"{limit} and no slot became free within {self.queue_timeout:g} s."
        return f"{limit} and {len(self._waiting)} requests are already waiting."
