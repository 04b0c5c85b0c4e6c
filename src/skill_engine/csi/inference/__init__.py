"""Inference drivers: one `Inference` protocol, one class per backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from skill_engine.csi.errors import NO_INFERENCE, CsiError
from skill_engine.csi.types import (
    ChatEvent,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionEvent,
    CompletionRequest,
    ExplanationRequest,
    TextScore,
)

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


class Inference(Protocol):
    async def chat(self, requests: Sequence[ChatRequest], ctx: CsiContext) -> list[ChatResponse]: ...

    async def chat_stream(self, request: ChatRequest, ctx: CsiContext) -> EventStream[ChatEvent]: ...

    async def completion_stream(
        self, request: CompletionRequest, ctx: CsiContext
    ) -> EventStream[CompletionEvent]: ...

    async def complete(self, requests: Sequence[CompletionRequest], ctx: CsiContext) -> list[Completion]: ...

    async def explain(
        self, requests: Sequence[ExplanationRequest], ctx: CsiContext
    ) -> list[list[TextScore]]: ...

    async def aclose(self) -> None: ...


class NoInference:
    """Used when no backend is configured: every call fails with the documented text."""

    async def chat(self, requests: Sequence[ChatRequest], ctx: CsiContext) -> list[ChatResponse]:
        raise CsiError(NO_INFERENCE)

    async def complete(self, requests: Sequence[CompletionRequest], ctx: CsiContext) -> list[Completion]:
        raise CsiError(NO_INFERENCE)

    async def chat_stream(self, request: ChatRequest, ctx: CsiContext) -> EventStream[ChatEvent]:
        raise CsiError(NO_INFERENCE)

    async def completion_stream(
        self, request: CompletionRequest, ctx: CsiContext
    ) -> EventStream[CompletionEvent]:
        raise CsiError(NO_INFERENCE)

    async def explain(self, requests: Sequence[ExplanationRequest], ctx: CsiContext) -> list[list[TextScore]]:
        raise CsiError(NO_INFERENCE)

    async def aclose(self) -> None:
        return None


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
