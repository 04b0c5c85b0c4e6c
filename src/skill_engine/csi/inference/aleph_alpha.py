"""Aleph Alpha inference (`INFERENCE_URL`), always called with the caller's own bearer token.

Completions and explanations use the native `/complete` and `/explain` API; chat goes through the same
server's OpenAI-compatible `/chat/completions` (shared with the OpenAI backend); tokenizers for chunking
come from `/models/{model}/tokenizer` and are cached per model (engine-spec §4.4, §3.4).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import Any

import httpx
from cachetools import LRUCache
from tokenizers import Tokenizer

from skill_engine.csi import genai
from skill_engine.csi.calls import CsiContext, EventStream
from skill_engine.csi.errors import CsiError
from skill_engine.csi.inference.openai import MODEL_NOT_FOUND, UNAUTHORIZED, ChatCompletionsBackend
from skill_engine.csi.inference.streams import UpstreamStream
from skill_engine.csi.retries import ALEPH_ALPHA
from skill_engine.csi.segments import segment
from skill_engine.csi.types import (
    Completion,
    CompletionAppend,
    CompletionEnd,
    CompletionEvent,
    CompletionRequest,
    Distribution,
    ExplanationRequest,
    FinishReason,
    Logprob,
    Logprobs,
    TextScore,
    TokenUsage,
    Usage,
)
from skill_engine.single_flight import SingleFlight
from skill_engine.telemetry import outbound_headers

log = logging.getLogger("skill_engine.csi")

TOKEN_REQUIRED = (
    "Doing an inference request against the Aleph Alpha inference API requires a PhariaAI token. Please "
    "provide a valid token in the Authorization header."
)
MULTI_MODAL = "We do not support multi-model prompts, so the first item will always be text."
MAX_TOKENIZERS = 8

_FINISH_REASONS = {
    "length": FinishReason.LENGTH,
    "maximum_tokens": FinishReason.LENGTH,
    "stop": FinishReason.STOP,
    "end_of_text": FinishReason.STOP,
    "stop_sequence_reached": FinishReason.STOP,
    "content_filter": FinishReason.CONTENT_FILTER,
}


def finish_reason(value: Any) -> FinishReason:
    try:
        return _FINISH_REASONS[str(value)]
    except KeyError:
        raise CsiError(f"Unknown finish reason: {value}") from None


def completion_body(request: CompletionRequest, stream: bool = False) -> dict[str, Any]:
    """The `/complete` body (engine-spec §4.4): absent options and an empty stop list are omitted."""
    params = request.params
    body: dict[str, Any] = {"model": request.model, "prompt": [{"type": "text", "data": request.prompt}]}
    optional = {
        "maximum_tokens": params.max_tokens,
        "stop_sequences": list(params.stop) or None,
        "temperature": params.temperature,
        "top_k": params.top_k,
        "top_p": params.top_p,
        "frequency_penalty": params.frequency_penalty,
        "presence_penalty": params.presence_penalty,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if params.return_special_tokens:
        body["raw_completion"] = True
    if params.logprobs.kind != "no":
        body["log_probs"] = params.logprobs.top_n if params.logprobs.kind == "top" else 0
        body["tokens"] = True
    if params.echo:
        body["echo"] = True
    if stream:
        body["stream"] = True
    return body


def distributions(item: dict[str, Any], logprobs: Logprobs) -> list[Distribution]:
    """`log_probs` (one token → logprob map per position) and `completion_tokens` as distributions."""
    if logprobs.kind == "no":
        return []
    tokens = item.get("completion_tokens") or []
    maps = item.get("log_probs") or []
    n = logprobs.top_n if logprobs.kind == "top" else 0
    result = []
    for token, alternatives in zip(tokens, maps, strict=False):
        alternatives = alternatives or {}
        sampled = alternatives.get(token)
        ranked = sorted(
            ((t, v) for t, v in alternatives.items() if v is not None), key=lambda kv: kv[1], reverse=True
        )
        result.append(
            Distribution(
                sampled=Logprob(str(token).encode(), math.nan if sampled is None else float(sampled)),
                top=[Logprob(t.encode(), float(v)) for t, v in ranked[:n]],
            )
        )
    return result


def _usage(body: dict[str, Any]) -> TokenUsage:
    return TokenUsage(int(body.get("num_tokens_prompt_total", 0)), int(body.get("num_tokens_generated", 0)))


def parse_completion(body: dict[str, Any], request: CompletionRequest) -> Completion:
    completions = body.get("completions") or []
    if not completions:
        raise CsiError("Expected at least one completion in the response of the inference API.")
    item = completions[0]
    key = "raw_completion" if request.params.return_special_tokens else "completion"
    text = item.get(key)
    if text is None:
        text = item.get("completion") or ""
    return Completion(
        text=str(text),
        finish_reason=finish_reason(item.get("finish_reason")),
        logprobs=distributions(item, request.params.logprobs),
        usage=_usage(body),
    )


def stream_events(request: CompletionRequest) -> Any:
    def events(chunk: dict[str, Any]) -> list[CompletionEvent]:
        kind = chunk.get("type")
        if kind == "stream_chunk":
            key = "raw_completion" if request.params.return_special_tokens else "completion"
            text = chunk.get(key)
            if text is None:
                text = chunk.get("completion") or ""
            return [CompletionAppend(str(text), distributions(chunk, request.params.logprobs))]
        if kind == "stream_summary":
            return [CompletionEnd(finish_reason(chunk.get("finish_reason")))]
        if kind == "completion_summary":
            return [Usage(_usage(chunk))]
        return []

    return events


def explain_body(request: ExplanationRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": [{"type": "text", "data": request.prompt}],
        "target": request.target,
    }
    if request.granularity != "auto":
        body["prompt_granularity"] = {"type": request.granularity}
    return body


def parse_explanation(body: dict[str, Any]) -> list[TextScore]:
    explanations = body.get("explanations") or []
    items = (explanations[0].get("items") or []) if explanations else []
    if not items or items[0].get("type") != "text":
        raise CsiError(MULTI_MODAL)
    return [
        TextScore(int(s["start"]), int(s["length"]), float(s["score"])) for s in items[0].get("scores") or []
    ]


def api_error(response: httpx.Response) -> CsiError:
    if response.status_code == 401:
        return CsiError(UNAUTHORIZED)
    if response.status_code == 404:
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            code = None
        if code == "UNKNOWN_MODEL":
            return CsiError(MODEL_NOT_FOUND)
    return CsiError(f"HTTP request failed with status code {response.status_code}. Body:\n{response.text}")


class AlephAlphaInference(ChatCompletionsBackend):
    provider = "aleph_alpha"

    def __init__(
        self, url: str, client: httpx.AsyncClient | None = None, retry_delay: float = ALEPH_ALPHA.base_delay
    ) -> None:
        super().__init__(url, client, timeout=305.0)  # engine-spec §3.4: /complete and /explain
        self.native_retries = dataclasses.replace(ALEPH_ALPHA, base_delay=retry_delay)
        self._tokenizers: LRUCache[str, Tokenizer] = LRUCache(MAX_TOKENIZERS)
        self._loading: SingleFlight[str, Tokenizer | None] = SingleFlight()

    def headers(self, ctx: CsiContext) -> dict[str, str]:
        if ctx.token is None:
            raise CsiError(TOKEN_REQUIRED)
        # W3C trace context goes along to every Aleph Alpha call (engine-spec §4.4, §6.1).
        return dict(outbound_headers({"Authorization": f"Bearer {ctx.token}"}))

    async def _native(self, path: str, body: dict[str, Any], ctx: CsiContext) -> dict[str, Any]:
        """POSTs to the native API, retrying busy/unavailable answers with exponential backoff."""
        headers = self.headers(ctx)
        try:
            response = await self.native_retries.send(
                lambda: self._client.post(f"{self.base_url}{path}", json=body, headers=headers)
            )
        except httpx.HTTPError as e:
            raise CsiError(f"Error sending request to the inference API: {type(e).__name__}: {e}") from e
        if response.status_code >= 400:
            raise api_error(response)
        try:
            parsed = response.json()
        except ValueError as e:
            raise CsiError("The inference API answered with invalid JSON.") from e
        if not isinstance(parsed, dict):
            raise CsiError("The inference API answered with an unexpected JSON shape.")
        return parsed

    async def complete(self, requests: Sequence[CompletionRequest], ctx: CsiContext) -> list[Completion]:
        async def one(request: CompletionRequest) -> Completion:
            return parse_completion(await self._native("/complete", completion_body(request), ctx), request)

        return await genai.complete(requests, one, self.provider)

    async def completion_stream(
        self, request: CompletionRequest, ctx: CsiContext
    ) -> EventStream[CompletionEvent]:
        body = completion_body(request, stream=True)
        headers = self.headers(ctx)
        stream = UpstreamStream(
            lambda: self._stream("/complete", body, headers), stream_events(request), api_error
        )
        return genai.traced_stream("text_completion", request, stream, self.provider)

    async def explain(self, requests: Sequence[ExplanationRequest], ctx: CsiContext) -> list[list[TextScore]]:
        async def one(request: ExplanationRequest) -> list[TextScore]:
            return parse_explanation(await self._native("/explain", explain_body(request), ctx))

        return await genai.explain(requests, one, self.provider)

    # -- tokenizers (chunking) --------------------------------------------------------------------------

    async def tokenizer(self, model: str, ctx: CsiContext) -> Tokenizer | None:
        """The model's tokenizer, cached per model; any failure means None (chunking counts characters)."""
        cached = self._tokenizers.get(model)
        if cached is not None:
            return cached
        token = ctx.token
        if token is None:
            return None
        return await self._loading.run(model, lambda: self._fetch_tokenizer(model, token))

    async def _fetch_tokenizer(self, model: str, token: str) -> Tokenizer | None:
        try:
            # A skill chooses the model name: one encoded path segment, never `..` (InvalidSegment ⇒ None).
            url = f"{self.base_url}/models/{segment(model, 'model name')}/tokenizer"
            headers = outbound_headers({"Authorization": f"Bearer {token}"})
            response = await self._client.get(url, headers=dict(headers))
            if response.status_code != 200:
                log.info("Error fetching tokenizer for %s: status %d", model, response.status_code)
                return None
            tokenizer = await asyncio.to_thread(Tokenizer.from_str, response.text)
            # tokenizers >= 0.23 reports the truncated size when truncation is configured; text-splitter
            # 0.28 (PhariaEngine) counted the whole text, so chunk sizes must ignore truncation.
            tokenizer.no_truncation()
        except Exception as e:
            log.info("Error fetching tokenizer for %s: %s", model, e)
            return None
        self._tokenizers[model] = tokenizer
        return tokenizer
