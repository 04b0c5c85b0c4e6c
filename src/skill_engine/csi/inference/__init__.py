"""Inference drivers: one `Inference` protocol, one class per backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from skill_engine.csi.calls import CsiContext, EventStream
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
