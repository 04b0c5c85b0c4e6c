"""OpenAI-compatible inference (vLLM, llama.cpp, Ollama, OpenAI, ...).

Chat follows engine-spec §4.4. Completions go to the same backend's `/completions` endpoint, which
PhariaEngine does not offer (it rejects completions on this backend); the mapping to the legacy
completions API is documented in docs/decisions/0002-openai-completions.md. The request bodies and the
parsers of what comes back are in openai_wire.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import httpx

from skill_engine.csi import genai
from skill_engine.csi.calls import CsiContext, EventStream
from skill_engine.csi.errors import OPENAI_NOT_SUPPORTED, CsiError
from skill_engine.csi.inference.openai_wire import (
    chat_body,
    chat_chunk_events,
    chat_chunk_events_v2,
    completion_body,
    completion_chunk_events,
    parse_chat_response,
    parse_chat_response_v2,
    parse_completion_response,
)
from skill_engine.csi.inference.pool import ShardedClient
from skill_engine.csi.inference.reasoning import ReasoningExtractor
from skill_engine.csi.inference.streams import UpstreamStream
from skill_engine.csi.retries import OPENAI, RetrySchedule
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

UNAUTHORIZED = "Unauthorized"
MODEL_NOT_FOUND = (
    "The Skill tried to access a model that was not found. Please check the provided model name. You can "
    "query the list of available models at the `models` endpoint of the inference API. If you believe the "
    "model should be available, contact the operator of your PhariaAI instance."
)


def _api_error(response: httpx.Response, api: str) -> CsiError:
    try:
        detail: Any = response.json()
    except ValueError:
        detail = response.text
    error = detail.get("error") if isinstance(detail, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if response.status_code == 401 or code == "invalid_api_key":
        return CsiError(UNAUTHORIZED)
    if code == "model_not_found" or (response.status_code == 404 and "model" in response.text.lower()):
        return CsiError(MODEL_NOT_FOUND)
    message = error.get("message") if isinstance(error, dict) else None
    text = message or (json.dumps(detail) if not isinstance(detail, str) else detail)
    return CsiError(f"Error while calling OpenAI {api} API: {response.status_code}: {text}")


def _stream_body(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "stream": True, "stream_options": {"include_usage": True}}


class ChatCompletionsBackend:
    """Chat over an OpenAI-compatible `/chat/completions`; subclasses choose the credentials per call."""

    provider = "openai"
    """`gen_ai.provider.name` of this backend's spans."""

    retries: RetrySchedule = OPENAI
    """Like the OpenAI client library (engine-spec §3.4), see `csi/retries.py`."""

    def __init__(self, url: str, client: httpx.AsyncClient | None = None, timeout: float = 300.0) -> None:
        self.base_url = url.rstrip("/")
        # Waiting invocations are cheap (docs/operating.md, capacity): a thousand may wait on the
        # backend at once, so the pool must not serialise them (bench/concurrency.py).
        self._client: httpx.AsyncClient | ShardedClient = client or ShardedClient(
            httpx.Timeout(timeout, connect=10.0), max_connections=4096, max_keepalive_connections=256
        )

    def headers(self, ctx: CsiContext) -> dict[str, str]:
        """The headers of every call made for `ctx`; raises `CsiError` if credentials are missing."""
        raise NotImplementedError

    async def _post(self, path: str, body: dict[str, Any], api: str, ctx: CsiContext) -> dict[str, Any]:
        headers = self.headers(ctx)
        try:
            response = await self.retries.send(
                lambda: self._client.post(f"{self.base_url}{path}", json=body, headers=headers)
            )
        except httpx.HTTPError as e:
            raise CsiError(f"Error while calling OpenAI {api} API: {type(e).__name__}: {e}") from e
        if response.status_code >= 400:
            raise _api_error(response, api)
        try:
            parsed = response.json()
        except ValueError as e:
            raise CsiError(f"Error while calling OpenAI {api} API: invalid JSON in response") from e
        if not isinstance(parsed, dict):
            raise CsiError(f"Error while calling OpenAI {api} API: unexpected response shape")
        return parsed

    def _stream(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        return self._client.stream("POST", f"{self.base_url}{path}", json=body, headers=headers)

    async def chat(self, requests: Sequence[ChatRequest], ctx: CsiContext) -> list[ChatResponse]:
        async def one(request: ChatRequest) -> ChatResponse:
            body = await self._post("/chat/completions", chat_body(request), "chat completion", ctx)
            return parse_chat_response_v2(body) if request.v2 else parse_chat_response(body)

        return await genai.chat(requests, one, self.provider)

    async def chat_stream(self, request: ChatRequest, ctx: CsiContext) -> EventStream[ChatEvent]:
        body = _stream_body(chat_body(request))  # validates roles before anything is sent
        headers = self.headers(ctx)
        to_events: Callable[[dict[str, Any]], list[Any]] = chat_chunk_events
        if request.v2:
            # A v2 stream also yields reasoning and tool-call events (`ChatEventV2`).
            to_events = partial(chat_chunk_events_v2, extractor=ReasoningExtractor())
        stream = UpstreamStream(
            lambda: self._stream("/chat/completions", body, headers),
            to_events,
            lambda response: _api_error(response, "chat completion"),
        )
        return genai.traced_stream("chat", request, stream, self.provider)

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAIInference(ChatCompletionsBackend):
    """Calls an OpenAI-compatible server with the configured API key (never the caller's token)."""

    def __init__(self, url: str, token: str, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(url, client)
        self._auth = {"Authorization": f"Bearer {token}"}

    def headers(self, ctx: CsiContext) -> dict[str, str]:
        return self._auth

    async def complete(self, requests: Sequence[CompletionRequest], ctx: CsiContext) -> list[Completion]:
        async def one(request: CompletionRequest) -> Completion:
            body = await self._post("/completions", completion_body(request), "completion", ctx)
            return parse_completion_response(body, request.params.logprobs)

        return await genai.complete(requests, one, self.provider)

    async def completion_stream(
        self, request: CompletionRequest, ctx: CsiContext
    ) -> EventStream[CompletionEvent]:
        body = _stream_body(completion_body(request))
        stream = UpstreamStream(
            lambda: self._stream("/completions", body, self._auth),
            completion_chunk_events,
            lambda response: _api_error(response, "completion"),
        )
        return genai.traced_stream("text_completion", request, stream, self.provider)

    async def explain(self, requests: Sequence[ExplanationRequest], ctx: CsiContext) -> list[list[TextScore]]:
        raise CsiError(OPENAI_NOT_SUPPORTED)
