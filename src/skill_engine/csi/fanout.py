"""Runs the requests of one CSI batch concurrently, within two bounds (docs/security.md).

A batch (`complete`, `chat`, `search`, `documents`, ... with N requests, from a skill or from `/csi/*`
over HTTP) runs at most `CSI_BATCH_CONCURRENCY` of its requests at once; a guest makes one host call at a
time, so this is also the bound per invocation. Across the engine at most `CSI_CONCURRENCY` requests run
at once; the others wait for a turn. A batch of a million requests therefore starts a handful of tasks,
not a million, and a few skills cannot open thousands of upstream connections.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

PER_BATCH = 16
ENGINE_WIDE = 256

_limits = {"per_batch": PER_BATCH, "engine": ENGINE_WIDE}
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def configure(per_batch: int = PER_BATCH, engine: int = ENGINE_WIDE) -> None:
    """Sets both bounds (called once at start-up)."""
    _limits["per_batch"] = max(1, per_batch)
    _limits["engine"] = max(1, engine)
    _slots.clear()


def _engine_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(_limits["engine"])
    return slots


async def fan_out(items: Sequence[In], call: Callable[[In], Coroutine[Any, Any, Out]]) -> list[Out]:
    """Runs `call` for each item, at most `per_batch` at once; results in request order; a failure cancels
    the rest."""
    slots = _engine_slots()
    if len(items) == 1:
        async with slots:
            return [await call(items[0])]
    results: list[Any] = [None] * len(items)
    pending = iter(enumerate(items))

    async def worker() -> None:
        for index, item in pending:
            async with slots:
                results[index] = await call(item)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(len(items), _limits["per_batch"])):
                group.create_task(worker())
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return results
