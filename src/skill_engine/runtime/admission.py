"""Admission control: at most `MAX_CONCURRENT_SKILLS` invocations run at once (optionally fewer per
namespace); beyond that, requests wait in a bounded queue (`MAX_QUEUED_SKILLS`) for at most
`SKILL_QUEUE_TIMEOUT`, and are then turned away with 429 and `Retry-After` instead of piling up memory.

Weighted fair sharing across namespaces (docs/governance.md): a freed slot goes to the waiting namespace
with the fewest running invocations per unit of `weight`, so under saturation every busy namespace runs
in proportion to its weight. Slots are not pre-empted, so that alone would make a trickle wait for one of
a flood's requests to finish; instead `reserve` slots are kept from any single namespace while more than
one is known: one namespace holds at most `limit - reserve` slots, and a request of another namespace
finds a free slot at once. The queue is shared by weight too: once it is full, a namespace may still
queue up to its weighted share of it, a namespace beyond its share is turned away. Per namespace,
`max-concurrent` and `max-queued` cap it.

A slot is held until the worker thread of the invocation has really finished (also for a guest that is
abandoned at its deadline while blocked in WASI), so the thread pool never holds more than the cap.
Runs on the event loop only; no locks needed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
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


@dataclass(frozen=True)
class Share:
    """A namespace's `[namespaces.<ns>.limits]` as far as admission is concerned."""

    weight: float = 1.0
    max_concurrent: int | None = None
    max_queued: int | None = None


_order = itertools.count()


@dataclass
class _Waiter:
    namespace: str
    seq: int = field(default_factory=lambda: next(_order))
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


@dataclass
class _Namespace:
    share: Share
    active: int = 0
    waiting: deque[_Waiter] = field(default_factory=deque)
    rejected: int = 0


def default_reserve(limit: int) -> int:
    """Slots kept from a single namespace when `RESERVED_SKILL_SLOTS` is unset: one per 16, at least one
    from 4 slots on (fewer slots are all needed by whoever is busy)."""
    return 0 if limit < 4 else max(1, limit // 16)


def _ignore(_namespace: str, _active: int, _queued: int) -> None:
    return None


class Admission:
    def __init__(
        self,
        limit: int,
        queue_length: int = 256,
        queue_timeout: float = 10.0,
        per_namespace: int | None = None,
        reserve: int | None = None,
    ) -> None:
        self.limit = limit
        self.reserve = min(default_reserve(limit) if reserve is None else reserve, limit - 1)
        """Slots no single namespace may take while other namespaces exist (they find one free at once)."""
        self.queue_length = queue_length
        self.queue_timeout = queue_timeout
        self.per_namespace = per_namespace
        self.active = 0
        self.rejected = 0
        self._shares: dict[str, Share] = {}
        self._namespaces: dict[str, _Namespace] = {}
        self._queued = 0
        self.on_change: Callable[[str, int, int], None] = _ignore
        """Hears (namespace, running, queued) whenever they change (per-namespace gauges)."""
        self.on_reject: Callable[[str], None] = lambda _namespace: None

    def configure(self, namespace: str, share: Share) -> None:
        self._shares[namespace] = share
        if namespace in self._namespaces:
            self._namespaces[namespace].share = share

    @property
    def waiting(self) -> int:
        return self._queued

    def running(self, namespace: str) -> int:
        state = self._namespaces.get(namespace)
        return 0 if state is None else state.active

    def queued(self, namespace: str) -> int:
        state = self._namespaces.get(namespace)
        return 0 if state is None else len(state.waiting)

    def _state(self, namespace: str) -> _Namespace:
        state = self._namespaces.get(namespace)
        if state is None:
            state = _Namespace(self._shares.get(namespace, Share()))
            self._namespaces[namespace] = state
        return state

    def _cap(self, state: _Namespace) -> int | None:
        return state.share.max_concurrent if state.share.max_concurrent is not None else self.per_namespace

    def _shared(self) -> bool:
        """More than one namespace may ask for slots: keep the reserve (configured or seen)."""
        return len(self._shares.keys() | self._namespaces.keys()) > 1

    def _reserved(self, state: _Namespace) -> bool:
        """Whether `state` already holds all the slots one namespace may hold."""
        return self.reserve > 0 and state.active >= self.limit - self.reserve and self._shared()

    def _can_run(self, state: _Namespace) -> bool:
        if self.active >= self.limit or self._reserved(state):
            return False
        cap = self._cap(state)
        return cap is None or state.active < cap

    def _take(self, namespace: str, state: _Namespace) -> None:
        self.active += 1
        state.active += 1
        self.on_change(namespace, state.active, len(state.waiting))

    def _may_queue(self, namespace: str, state: _Namespace) -> bool:
        own = state.share.max_queued
        if own is not None and len(state.waiting) >= own:
            return False
        if self._queued < self.queue_length:
            return True
        # Queue full: a namespace still below its weighted share of the queue may wait anyway.
        busy = {ns: s.share.weight for ns, s in self._namespaces.items() if s.waiting}
        busy[namespace] = state.share.weight
        fair = self.queue_length * state.share.weight / sum(busy.values())
        return len(state.waiting) < int(fair)

    def _reject(self, namespace: str, state: _Namespace, queued: bool) -> Overloaded:
        self.rejected += 1
        state.rejected += 1
        if namespace in self._shares or namespace in self._namespaces:
            self.on_reject(namespace)
        return Overloaded(self._why(namespace, state, queued))

    def check(self, namespace: str) -> None:
        """Raises Overloaded if a request for `namespace` would be turned away at once (queue full).

        For message streams, which must answer 429 before the stream opens; waiting happens later.
        """
        # Not `_state`: this runs before the skill is known to exist, so it must not remember names.
        state = self._namespaces.get(namespace) or _Namespace(self._shares.get(namespace, Share()))
        if not self._can_run(state) and not self._may_queue(namespace, state):
            raise self._reject(namespace, state, queued=False)

    async def acquire(self, namespace: str) -> None:
        """Returns once the invocation may run; raises Overloaded when queue or waiting time is exhausted."""
        state = self._state(namespace)
        # Waiters still queued are all blocked (release grants every runnable one), so this is fair.
        if self._can_run(state):
            self._take(namespace, state)
            return
        if not self._may_queue(namespace, state):
            raise self._reject(namespace, state, queued=False)
        waiter = _Waiter(namespace)
        state.waiting.append(waiter)
        self._queued += 1
        self.on_change(namespace, state.active, len(state.waiting))
        try:
            await asyncio.wait_for(asyncio.shield(waiter.granted), self.queue_timeout)
        except (TimeoutError, asyncio.CancelledError) as e:
            if waiter.granted.done() and not waiter.granted.cancelled():
                if isinstance(e, TimeoutError):
                    return  # granted at the very last moment: keep the slot
                self.release(namespace)  # granted, but the caller went away
            else:
                waiter.granted.cancel()
                state.waiting.remove(waiter)
                self._queued -= 1
                self.on_change(namespace, state.active, len(state.waiting))
            if isinstance(e, asyncio.CancelledError):
                raise
            raise self._reject(namespace, state, queued=True) from None

    def release(self, namespace: str) -> None:
        state = self._namespaces[namespace]
        self.active -= 1
        state.active -= 1
        self.on_change(namespace, state.active, len(state.waiting))
        self._grant()

    def _grant(self) -> None:
        """Hands free slots to waiters: the namespace with the fewest running per weight first."""
        while self.active < self.limit:
            candidates = [
                (s.active / s.share.weight, s.waiting[0].seq, ns, s)
                for ns, s in self._namespaces.items()
                if s.waiting and self._can_run(s)
            ]
            if not candidates:
                return
            _, _, namespace, state = min(candidates, key=lambda c: (c[0], c[1]))
            waiter = state.waiting.popleft()
            self._queued -= 1
            self._take(namespace, state)
            waiter.granted.set_result(None)

    def _why(self, namespace: str, state: _Namespace, queued: bool) -> str:
        cap = self._cap(state)
        if self.active < self.limit and cap is not None and state.active >= cap:
            limit = f"namespace '{namespace}' already runs its maximum of {cap} skills"
        elif self.active < self.limit and self._reserved(state):
            limit = (
                f"namespace '{namespace}' already runs {state.active} of the {self.limit} skill execution "
                f"slots ({self.reserve} kept for other namespaces)"
            )
        else:
            limit = f"all {self.limit} skill execution slots are busy"
        if queued:
            return f"{limit} and no slot became free within {self.queue_timeout:g} s."
        return f"{limit} and {self._queued} requests are already waiting."
