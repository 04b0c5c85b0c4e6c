"""Guests stuck in WASI after their invocation was stopped (docs/security.md, decisions/0010).

A guest blocked inside a WASI call (`time.sleep(10**9)`, a poll on a far deadline) cannot be interrupted:
epoch checks only run in wasm code, and wasmtime-py exposes no way to cancel a blocking WASI call (see
docs/decisions/0010-guests-stuck-in-wasi.md). Its caller is answered at the deadline anyway; this module
decides what happens to its execution slot. Shortly after the stop (`SETTLE` seconds, enough for a busy
guest to trap at its next epoch check) a thread that is still running is counted as stuck and its slot
is given back, so stuck guests stop counting against `MAX_CONCURRENT_SKILLS`. At most `MAX_STUCK_SKILLS`
slots are given back; the thread pool has that many extra threads, so the number of threads stays
bounded. Stuck guests beyond the bound keep their slots, and the engine reports itself unhealthy
(`/health` answers 503) so an orchestrator replaces it. When a stuck thread ends after all (a sleep that
finishes), it is forgotten and, if it still held a slot, the slot is freed.

Runs on the event loop only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("skill_engine.runtime")

SETTLE = 0.5
"""Seconds after a stop before a still-running guest thread counts as stuck."""


class StuckGuests:
    def __init__(self, bound: int) -> None:
        self.bound = bound
        self._released: set[Any] = set()
        self._holding: dict[Any, Callable[[], None]] = {}

    @property
    def count(self) -> int:
        """Threads still running guests that were stopped (slot given back or not)."""
        return len(self._released) + len(self._holding)

    @property
    def healthy(self) -> bool:
        return not self._holding

    @staticmethod
    def slot_release(release: Callable[[], None]) -> Callable[[], None]:
        """`release`, callable many times but effective once (stuck-release and thread end both call it)."""
        done = False

        def once() -> None:
            nonlocal done
            if not done:
                done = True
                release()

        return once

    def watch(
        self,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        invocation: Any,
        release: Callable[[], None],
        label: str,
    ) -> None:
        """Called when the caller stopped waiting for `future` (deadline, stop, client gone)."""

        def check() -> None:
            if future.done():
                return
            if len(self._released) < self.bound:
                self._released.add(invocation)
                release()
                log.warning(
                    "guest still blocked after it was stopped; its slot is given back (%d of at most %d)",
                    len(self._released),
                    self.bound,
                    extra={"skill": label},
                )
            else:
                self._holding[invocation] = release
                log.error(
                    "guest still blocked after it was stopped and MAX_STUCK_SKILLS=%d is reached: it keeps "
                    "its slot and the engine reports unhealthy",
                    self.bound,
                    extra={"skill": label},
                )

        loop.call_later(SETTLE, check)

    def finished(self, invocation: Any) -> None:
        """The thread of `invocation` ended; a guest held beyond the bound may now give its slot back."""
        self._holding.pop(invocation, None)
        if invocation in self._released:
            self._released.discard(invocation)
            if self._holding:
                promoted, release = next(iter(self._holding.items()))
                del self._holding[promoted]
                self._released.add(promoted)
                release()
