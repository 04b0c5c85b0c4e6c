"""The OpenAI chat/completions wire format: request bodies, and the parsers of answers and stream chunks.

No HTTP here (csi/inference/openai.py sends and receives); chat "v1" is WIT 0.2/0.3's chat, "v2" 0.4's
with tools and reasoning (engine-spec §4.4).
"""

from __future__ import annotations

from typing import Any

from skill_engine.csi.errors import CsiError
from skill_engine.csi.inference.reasoning import Part, ReasoningExtractor, split_reasoning
from skill_engine.csi.types import (
    ChatAppend,
    ChatBegin,
    ChatEnd,
    ChatEvent,
    ChatEventV2,
    ChatParams,
    ChatReasoning,
    ChatRequest,
    ChatResponse,
    ChatToolCall,
    Completion,
    CompletionAppend,
    CompletionEnd,
    CompletionEvent,
    CompletionRequest,
    Distribution,
    FinishReason,
    Logprob,
    Logprobs,
    Message,
    TokenUsage,
    ToolCall,
    ToolCallChunk,
    Usage,
)

EMPTY_CONTENT = (
    "The inference backend returned a message with an empty content while no tools were specified in the "
    "request. For such responses, we expect a content and no tool calls. This seems to be a bug with the "
    "configured inference backend."
)
UNEXPECTED_TOOL_CALL = (
    "The inference backend returned a tool call, even though no tools were specified in the chat request. "
    "This is likely a bug with the inference backend. Please report this issue to the operator of your "
    "PhariaAI instance."
)

_FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
}
_OTHER_ROLES = {"system", "developer", "user"}


def map_role(role: str) -> str:
    lowered = role.lower()
    if lowered == "assistant" or lowered == "tool" or lowered in _OTHER_ROLES:
        return lowered
    raise CsiError(
        f"The role {role} is not supported by the inference backend. Currently, supported roles are "
        "`user`, `assistant`, `system` and `tool`."
    )


def _logprob_options(logprobs: Logprobs) -> dict[str, Any]:
    if logprobs.kind == "no":
        return {}
    return {"logprobs": True, "top_logprobs": logprobs.top_n if logprobs.kind == "top" else 1}


def chat_body(request: ChatRequest) -> dict[str, Any]:
    """The `/chat/completions` request body for a chat request (§4.4 request mapping)."""
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = map_role(message.role)
        entry: dict[str, Any] = {"role": role}
        if message.content is not None or role != "assistant":
            entry["content"] = message.content if message.content is not None else ""
        if role == "assistant" and message.tool_calls:
            entry["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in message.tool_calls
            ]
        if role == "tool" and message.tool_call_id is not None:
            entry["tool_call_id"] = message.tool_call_id
        messages.append(entry)
    params: ChatParams = request.params
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    optional = {
        "max_tokens": params.max_tokens,
        "max_completion_tokens": params.max_completion_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "frequency_penalty": params.frequency_penalty,
        "presence_penalty": params.presence_penalty,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body.update(_logprob_options(params.logprobs))
    body.update(_v2_options(params))
    return body


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _v2_options(params: ChatParams) -> dict[str, Any]:
    """Tool calling, response format and reasoning effort (chat "v2", WIT 0.4+); absent ones are omitted."""
    options: dict[str, Any] = {}
    if params.tools is not None:
        options["tools"] = [
            {
                "type": "function",
                "function": _present(
                    name=f.name, description=f.description, parameters=f.parameters, strict=f.strict
                ),
            }
            for f in params.tools
        ]
    choice = params.tool_choice
    if choice is not None:
        named = {"type": "function", "function": {"name": choice.name}}
        options["tool_choice"] = named if choice.kind == "named" else choice.kind
    if params.parallel_tool_calls is not None:
        options["parallel_tool_calls"] = params.parallel_tool_calls
    response_format = params.response_format
    if response_format is not None:
        options["response_format"] = {"type": response_format.kind}
        schema = response_format.json_schema
        if schema is not None:
            options["response_format"]["json_schema"] = _present(
                name=schema.name, description=schema.description, schema=schema.schema, strict=schema.strict
            )
    if params.reasoning_effort is not None:
        options["reasoning_effort"] = params.reasoning_effort
    return options


def _token_bytes(entry: dict[str, Any]) -> bytes:
    raw = entry.get("bytes")
    if isinstance(raw, list):
        return bytes(raw)
    return str(entry.get("token", "")).encode()


def _chat_logprobs(choice: dict[str, Any]) -> list[Distribution]:
    content = (choice.get("logprobs") or {}).get("content") or []
    return [
        Distribution(
            sampled=Logprob(_token_bytes(item), float(item.get("logprob", float("nan")))),
            top=[Logprob(_token_bytes(t), float(t["logprob"])) for t in item.get("top_logprobs") or []],
        )
        for item in content
    ]


def _finish_reason(value: Any) -> FinishReason:
    if value is None:
        raise CsiError("Expected chat completion response to have a finish reason.")
    try:
        return _FINISH_REASONS[str(value)]
    except KeyError:
        raise CsiError(f"Unknown finish reason: {value}") from None


def _token_usage(usage: dict[str, Any]) -> TokenUsage:
    return TokenUsage(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))


def _usage(body: dict[str, Any]) -> TokenUsage:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        raise CsiError("Expected chat completion response to have a usage.")
    return _token_usage(usage)


def _answered_choice(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], FinishReason]:
    """The first choice of a chat completion, its message and its finish reason (both chat versions)."""
    choices = body.get("choices") or []
    if not choices:
        raise CsiError("Expected at least one choice in the chat completion response.")
    choice = choices[0]
    return choice, choice.get("message") or {}, _finish_reason(choice.get("finish_reason"))


def parse_chat_response(body: dict[str, Any]) -> ChatResponse:
    choice, message, finish_reason = _answered_choice(body)
    content = message.get("content")
    # Chat "v1" (WIT 0.2/0.3) has no tools, so a tool call or a missing content is a backend bug.
    if message.get("tool_calls") or finish_reason is FinishReason.TOOL_CALLS:
        raise CsiError(UNEXPECTED_TOOL_CALL)
    if content is None:
        raise CsiError(EMPTY_CONTENT)
    return ChatResponse(
        message=Message("assistant", content),
        finish_reason=finish_reason,
        logprobs=_chat_logprobs(choice),
        usage=_usage(body),
    )


def _reasoning_content(message: dict[str, Any]) -> str | None:
    """`reasoning_content`, or `reasoning` as some providers (e.g. OpenRouter) call it."""
    value = message.get("reasoning_content")
    if value is None:
        value = message.get("reasoning")
    return None if value is None else str(value)


def _tool_calls(message: dict[str, Any]) -> list[ToolCall] | None:
    calls = message.get("tool_calls")
    if not calls:
        return None
    result = []
    for call in calls:
        function = call.get("function") or {}
        arguments = function.get("arguments") or ""
        result.append(ToolCall(str(call.get("id", "")), str(function.get("name", "")), str(arguments)))
    return result


def parse_chat_response_v2(body: dict[str, Any]) -> ChatResponse:
    """Chat "v2" (WIT 0.4+): tool calls and reasoning are part of the answer; nothing is validated away."""
    choice, message, finish_reason = _answered_choice(body)
    content = message.get("content")
    reasoning = _reasoning_content(message)
    if reasoning is None:
        reasoning, content = split_reasoning(content)
    return ChatResponse(
        message=Message("assistant", content, reasoning_content=reasoning, tool_calls=_tool_calls(message)),
        finish_reason=finish_reason,
        logprobs=_chat_logprobs(choice),
        usage=_usage(body),
    )


def _first_choice(chunk: dict[str, Any]) -> list[Usage] | tuple[dict[str, Any], dict[str, Any]]:
    """The first choice and its delta of a streamed chat chunk, or the events of a chunk without choices
    (engine-spec §4.4: a usage-only chunk is one usage event, empty choices are nothing)."""
    usage = chunk.get("usage")
    if isinstance(usage, dict) and not chunk.get("choices"):
        return [Usage(_token_usage(usage))]
    choices = chunk.get("choices") or []
    if not choices:
        return []
    choice = choices[0]
    return choice, choice.get("delta") or {}


def chat_chunk_events_v2(chunk: dict[str, Any], extractor: ReasoningExtractor) -> list[ChatEventV2]:
    """One streamed chat chunk as "v2" events: reasoning, tool-call chunks, `<think>` split off content."""
    usage = chunk.get("usage")
    first = _first_choice(chunk)
    if not isinstance(first, tuple):
        return [*first]
    choice, delta = first
    events: list[ChatEventV2] = []
    if delta.get("role"):
        events.append(ChatBegin(str(delta["role"])))
    reasoning = _reasoning_content(delta)
    if reasoning:
        events.append(ChatReasoning(reasoning))
    if delta.get("content"):
        events.extend(_content_events(extractor.feed(str(delta["content"])), _chat_logprobs(choice)))
    elif delta.get("tool_calls"):
        events.append(
            ChatToolCall(
                [
                    ToolCallChunk(
                        index=int(call.get("index", 0)),
                        id=call.get("id"),
                        name=(call.get("function") or {}).get("name"),
                        arguments=(call.get("function") or {}).get("arguments"),
                    )
                    for call in delta["tool_calls"]
                ]
            )
        )
    if choice.get("finish_reason"):
        events.extend(_content_events(extractor.flush(), []))
        events.append(ChatEnd(_finish_reason(choice["finish_reason"])))
    if isinstance(usage, dict):
        events.append(Usage(_token_usage(usage)))
    return events


def _content_events(parts: list[Part], logprobs: list[Distribution]) -> list[ChatEventV2]:
    return [
        ChatReasoning(text) if kind == "reasoning" else ChatAppend(text, logprobs) for kind, text in parts
    ]


def chat_chunk_events(chunk: dict[str, Any]) -> list[ChatEvent]:
    """One streamed chat chunk as CSI events (engine-spec §4.4: usage-only and empty-choices chunks too)."""
    usage = chunk.get("usage")
    first = _first_choice(chunk)
    if not isinstance(first, tuple):
        return [*first]
    choice, delta = first
    events: list[ChatEvent] = []
    if delta.get("role"):
        events.append(ChatBegin(str(delta["role"])))
    if delta.get("tool_calls"):
        raise CsiError(UNEXPECTED_TOOL_CALL)
    if delta.get("content"):
        events.append(ChatAppend(str(delta["content"]), _chat_logprobs(choice)))
    if choice.get("finish_reason"):
        events.append(ChatEnd(_finish_reason(choice["finish_reason"])))
    if isinstance(usage, dict):
        events.append(Usage(_token_usage(usage)))
    return events


def completion_chunk_events(chunk: dict[str, Any]) -> list[CompletionEvent]:
    usage = chunk.get("usage")
    events: list[CompletionEvent] = []
    for choice in (chunk.get("choices") or [])[:1]:
        if choice.get("text"):
            events.append(CompletionAppend(str(choice["text"])))
        if choice.get("finish_reason"):
            events.append(CompletionEnd(_finish_reason(choice["finish_reason"])))
    if isinstance(usage, dict):
        events.append(Usage(_token_usage(usage)))
    return events


def completion_body(request: CompletionRequest) -> dict[str, Any]:
    params = request.params
    body: dict[str, Any] = {"model": request.model, "prompt": request.prompt}
    optional = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_k": params.top_k,
        "top_p": params.top_p,
        "frequency_penalty": params.frequency_penalty,
        "presence_penalty": params.presence_penalty,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if params.stop:
        body["stop"] = list(params.stop)
    if params.echo:
        body["echo"] = True
    if params.logprobs.kind != "no":
        body["logprobs"] = params.logprobs.top_n if params.logprobs.kind == "top" else 1
    if params.return_special_tokens:
        body["skip_special_tokens"] = False
    return body


def parse_completion_response(body: dict[str, Any], logprobs: Logprobs) -> Completion:
    choices = body.get("choices") or []
    if not choices:
        raise CsiError("Expected at least one choice in the completion response.")
    choice = choices[0]
    distributions: list[Distribution] = []
    raw = choice.get("logprobs") or {}
    if logprobs.kind != "no" and raw:
        tokens = raw.get("tokens") or []
        token_logprobs = raw.get("token_logprobs") or []
        top = raw.get("top_logprobs") or [None] * len(tokens)
        for token, lp, alternatives in zip(tokens, token_logprobs, top, strict=False):
            ranked = sorted((alternatives or {}).items(), key=lambda kv: kv[1], reverse=True)
            n = logprobs.top_n if logprobs.kind == "top" else 0
            distributions.append(
                Distribution(
                    sampled=Logprob(str(token).encode(), float("nan") if lp is None else float(lp)),
                    top=[Logprob(t.encode(), float(v)) for t, v in ranked[:n]],
                )
            )
    return Completion(
        text=str(choice.get("text") or ""),
        finish_reason=_finish_reason(choice.get("finish_reason")),
        logprobs=distributions,
        usage=_usage(body),
    )
