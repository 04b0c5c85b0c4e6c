"""The governed CSI: every inference and document call of a skill (any WIT line) and of CSI over HTTP
passes here before it reaches a driver. Checks the namespace's policy and token budget, and notes in the
invocation's audit record what was touched (names, never content). Tools check the same policies in
`Tools` itself, the one dispatch path of every tool call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from skill_engine.csi.calls import CsiContext, EventStream
from skill_engine.csi.documents import Documents
from skill_engine.csi.errors import CsiRefusal
from skill_engine.csi.inference import Inference
from skill_engine.csi.types import (
    ChatEvent,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionEvent,
    CompletionRequest,
    Document,
    DocumentPath,
    ExplanationRequest,
    Json,
    SearchRequest,
    SearchResult,
    TextScore,
    TokenUsage,
    Usage,
)
from skill_engine.governance import audit
from skill_engine.governance.budget import TokenBudgets
from skill_engine.governance.policy import Kind, Policies

Ev = TypeVar("Ev")


class PolicyDenied(CsiRefusal):
    status = 403
    kind = "policy_denied"

    def __init__(self, namespace: str | None, kind: Kind, name: str) -> None:
        who = f"The policy of namespace '{namespace}'" if namespace else "The engine's default policy"
        super().__init__(f"{who} does not allow the {kind.value} '{name}'.")


class TokenBudgetExhausted(CsiRefusal):
    status = 429
    kind = "token_budget"

    def __init__(self, namespace: str, per_minute: int, retry_after: int) -> None:
        super().__init__(
            f"The namespace '{namespace}' has used its budget of {per_minute} inference tokens per minute. "
            f"Please try again in {retry_after} s.",
            {"retry-after": str(retry_after)},
        )


def _nothing(*_args: Any) -> None:
    return None


@dataclass
class Guard:
    """What governs one engine: policies, token budgets, and who hears about denials and tokens."""

    policies: Policies = field(default_factory=Policies)
    budgets: TokenBudgets = field(default_factory=TokenBudgets)
    on_denied: Callable[[str | None, str], None] = _nothing
    """(namespace, kind) of every denial, for the per-namespace metrics."""
    on_tokens: Callable[[str | None, int], None] = _nothing

    def check(self, ctx: CsiContext, kind: Kind, names: Iterable[str]) -> None:
        for name in dict.fromkeys(names):
            self.check_tool(ctx.namespace, kind, name, ctx.over_http)
            audit.touch(kind.value, name)

    def check_tool(self, namespace: str | None, kind: Kind, name: str, over_http: bool = False) -> None:
        """Raises PolicyDenied unless the policies binding `namespace` allow `name`."""
        denied = self.policies.denied_by(namespace or None, kind, name, over_http)
        if denied is not None:
            self.on_denied(namespace or None, kind.value)
            # A skill's text names its namespace; over HTTP, the policy that refused (the caller's
            # namespace or the engine's baseline: naming a namespace cannot widen it).
            raise PolicyDenied(denied[0] if over_http else namespace, kind, name)

    def allows(self, namespace: str | None, kind: Kind, name: str, over_http: bool = False) -> bool:
        return self.policies.allows(namespace or None, kind, name, over_http=over_http)

    def spend(self, ctx: CsiContext, usage: TokenUsage) -> None:
        audit.tokens(usage.prompt, usage.completion)
        self.budgets.spend(ctx.namespace or None, usage.prompt + usage.completion)
        self.on_tokens(ctx.namespace or None, usage.prompt + usage.completion)

    def admit_inference(self, ctx: CsiContext, models: Iterable[str]) -> None:
        self.check(ctx, Kind.MODEL, models)
        retry_after = self.budgets.retry_after(ctx.namespace or None)
        if retry_after is not None:
            self.on_denied(ctx.namespace, "tokens")
            audit.deny("tokens", ctx.namespace)
            raise TokenBudgetExhausted(ctx.namespace, self.budgets.per_minute(ctx.namespace), retry_after)


class _GovernedStream(Generic[Ev]):
    def __init__(self, inner: EventStream[Ev], guard: Guard, ctx: CsiContext) -> None:
        self.inner = inner
        self.guard = guard
        self.ctx = ctx

    async def next(self) -> Ev | None:
        event = await self.inner.next()
        if isinstance(event, Usage):
            self.guard.spend(self.ctx, event.usage)
        return event

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # e.g. stream metadata of the driver's stream


class GovernedInference:
    def __init__(self, inner: Inference, guard: Guard) -> None:
        self.inner = inner
        self.guard = guard

    async def chat(self, requests: Sequence[ChatRequest], ctx: CsiContext) -> list[ChatResponse]:
        self.guard.admit_inference(ctx, (r.model for r in requests))
        responses = await self.inner.chat(requests, ctx)
        for response in responses:
            self.guard.spend(ctx, response.usage)
        return responses

    async def complete(self, requests: Sequence[CompletionRequest], ctx: CsiContext) -> list[Completion]:
        self.guard.admit_inference(ctx, (r.model for r in requests))
        completions = await self.inner.complete(requests, ctx)
        for completion in completions:
            self.guard.spend(ctx, completion.usage)
        return completions

    async def chat_stream(self, request: ChatRequest, ctx: CsiContext) -> EventStream[ChatEvent]:
        self.guard.admit_inference(ctx, [request.model])
        return _GovernedStream(await self.inner.chat_stream(request, ctx), self.guard, ctx)

    async def completion_stream(
        self, request: CompletionRequest, ctx: CsiContext
    ) -> EventStream[CompletionEvent]:
        self.guard.admit_inference(ctx, [request.model])
        return _GovernedStream(await self.inner.completion_stream(request, ctx), self.guard, ctx)

    async def explain(self, requests: Sequence[ExplanationRequest], ctx: CsiContext) -> list[list[TextScore]]:
        self.guard.admit_inference(ctx, (r.model for r in requests))
        return await self.inner.explain(requests, ctx)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # driver extras (e.g. tokenizers) stay reachable


def collection_name(namespace: str, collection: str) -> str:
    return f"{namespace}/{collection}"


class GovernedDocuments:
    def __init__(self, inner: Documents, guard: Guard) -> None:
        self.inner = inner
        self.guard = guard

    async def search(self, requests: Sequence[SearchRequest], ctx: CsiContext) -> list[list[SearchResult]]:
        names = [collection_name(r.index_path.namespace, r.index_path.collection) for r in requests]
        self.guard.check(ctx, Kind.COLLECTION, names)
        results = await self.inner.search(requests, ctx)
        for found in results:
            for result in found:
                path = result.document_path
                audit.touch("document", f"{path.namespace}/{path.collection}/{path.name}")
        return results

    async def documents(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Document]:
        self._check_paths(paths, ctx)
        return await self.inner.documents(paths, ctx)

    async def document_metadata(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Json]:
        self._check_paths(paths, ctx)
        return await self.inner.document_metadata(paths, ctx)

    def _check_paths(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> None:
        self.guard.check(ctx, Kind.COLLECTION, (collection_name(p.namespace, p.collection) for p in paths))
        for p in paths:
            audit.touch("document", f"{p.namespace}/{p.collection}/{p.name}")

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
