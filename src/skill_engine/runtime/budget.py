"""An engine-wide budget for skill input bytes in flight (docs/security.md, `MAX_INPUT_BYTES_IN_FLIGHT`).

wasmtime-py hands a `list<u8>` to the guest as one 32-byte C value per byte, and wasmtime copies that into
its own value vector before lowering it; both live until the export returns. A 50 MiB input therefore
costs gigabytes of native memory for the whole invocation, and a few at once exhaust the machine. Every
invocation holds its input's size from this budget until its worker thread ends; when the budget is
exhausted, invocations wait (first come, first served) for at most `SKILL_QUEUE_TIMEOUT`, then get 429.
An input larger than the whole budget runs alone.

Runs on the event loop only.
"""

from __future__ import annotations

import asyncio
from collections import deque

from skill_engine.runtime.admission import Overloaded


class ByteBudget:
    def __init__(self, limit: int, wait: float = 10.0) -> None:
        self.limit = limit
        self.wait = wait
        self.in_use = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _cost(self, size: int) -> int:
        return min(size, self.limit)

    def _fits(self, cost: int) -> bool:
        return self.in_use + cost <= self.limit

    async def acquire(self, size: int) -> int:
        """Waits until `size` bytes fit; returns the amount to pass to `release`."""
        cost = self._cost(size)
        if cost == 0:
            return 0
        if not self._waiting and self._fits(cost):
            self.in_use += cost
            return cost
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (cost, granted)
        self._waiting.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(granted), self.wait)
        except (TimeoutError, asyncio.CancelledError) as e:
            if granted.done() and not granted.cancelled():
                if isinstance(e, TimeoutError):
                    return cost
                self.release(cost)
            else:
                granted.cancel()
                self._waiting.remove(entry)
                self._grant()
            if isinstance(e, asyncio.CancelledError):
                raise
            raise Overloaded(
                f"{self.in_use} bytes of skill input are being processed (MAX_INPUT_BYTES_IN_FLIGHT is "
                f"{self.limit}) and no room became free within {self.wait:g} s."
            ) from None
        return cost

    def release(self, cost: int) -> None:
        self.in_use -= cost
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            cost, granted = self._waiting.popleft()
            self.in_use += cost
            granted.set_result(None)
