"""What every CSI call shares: who is calling, the stream protocol, and fanning a batch out.

Drivers, their GenAI spans (`csi.genai`), the runtime and the HTTP routes all import this module; it
imports nothing of the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

In = TypeVar("In")
Ev = TypeVar("Ev", covariant=True)


class EventStream(Protocol[Ev]):
    async def next(self) -> Ev | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CsiContext:
    """Who is calling: drivers use it for credentials, logs and traces."""

    namespace: str
    skill: str
    token: str | None = None
    over_http: bool = False
    """CSI over HTTP: `namespace` is the one the caller named (or empty); the default policy applies too."""


Out = TypeVar("Out")


async def fan_out(items: Sequence[In], call: Callable[[In], Coroutine[Any, Any, Out]]) -> list[Out]:
    """Runs `call` for each item concurrently; results in request order; a failure cancels the rest."""
    if len(items) == 1:
        return [await call(items[0])]
    try:
        async with asyncio.TaskGroup() as group:
            tasks: list[asyncio.Task[Out]] = [group.create_task(call(item)) for item in items]
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    return [task.result() for task in tasks]
