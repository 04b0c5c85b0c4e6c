"""JSON shapes of the inference, chunking, language and tool functions of CSI over HTTP (engine-spec
§2.9.1; the document functions are in `csi_documents`).

Parsers raise `ValueError` with a serde-like message when the body has the wrong shape (the route answers
422); a `CsiError` means the shape was right but the content cannot be converted (the route answers 500).
"""

from __future__ import annotations

import json
import math
from typing import Any

from skill_engine.csi.chunking import Chunk, ChunkParams, ChunkRequest
from skill_engine.csi.errors import CsiError
from skill_engine.csi.language import SelectLanguageRequest
from skill_engine.csi.types import (
    ChatParams,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionParams,
    CompletionRequest,
    Distribution,
    ExplanationRequest,
    Function,
    InvokeRequest,
    JsonSchema,
    Logprob,
    Logprobs,
    Message,
    ResponseFormat,
    TextScore,
    TokenUsage,
    Tool,
    ToolArgument,
    ToolCall,
    ToolChoice,
    ToolResult,
)

U8 = 2**8 - 1
U32 = 2**32 - 1
GRANULARITIES = ("auto", "word", "sentence", "paragraph")


class Fields:
    """Typed access to one JSON object's fields, failing like serde does."""

    def __init__(self, value: Any, what: str) -> None:
        if not isinstance(value, dict):
            raise ValueError(f"invalid type: {_kind(value)}, expected {what}")
        self.value: dict[str, Any] = value

    def required(self, key: str) -> Any:
        if key not in self.value:
            raise ValueError(f"missing field `{key}`")
        return self.value[key]

    def string(self, key: str) -> str:
        value = self.required(key)
        if not isinstance(value, str):
            raise ValueError(f"invalid type: {_kind(value)}, expected a string")
        return value

    def optional_string(self, key: str) -> str | None:
        value = self.value.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"invalid type: {_kind(value)}, expected a string")
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        value = self.value.get(key, default) if default is not None else self.required(key)
        if not isinstance(value, bool):
            raise ValueError(f"invalid type: {_kind(value)}, expected a boolean")
        return value

    def optional_uint(self, key: str, maximum: int = U32) -> int | None:
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            raise ValueError(f"invalid value: {_kind(value)}, expected an integer in 0..={maximum}")
        return value

    def uint(self, key: str, maximum: int = U32) -> int:
        self.required(key)
        value = self.optional_uint(key, maximum)
        if value is None:
            raise ValueError(f"invalid type: null, expected an integer in 0..={maximum}")
        return value

    def optional_float(self, key: str) -> float | None:
        value = self.value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"invalid type: {_kind(value)}, expected f64")
        return float(value)

    def items(self, key: str, default: list[Any] | None = None) -> list[Any]:
        value = self.value.get(key, default) if default is not None else self.required(key)
        return sequence(value)

    def strings(self, key: str) -> list[str]:
        values = self.items(key)
        if not all(isinstance(v, str) for v in values):
            raise ValueError("invalid type: expected a sequence of strings")
        return values


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"number `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    return "sequence" if isinstance(value, list) else "map"


def sequence(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"invalid type: {_kind(value)}, expected a sequence")
    return value


# -- inference ----------------------------------------------------------------------------------------


def logprobs_from_json(value: Any) -> Logprobs:
    if value == "no":
        return Logprobs("no")
    if value == "sampled":
        return Logprobs("sampled")
    if isinstance(value, dict) and set(value) == {"top"}:
        top = Fields(value, "top").uint("top", U8)
        return Logprobs("top", top)
    raise ValueError("unknown variant, expected one of `no`, `sampled`, `top`")


def completion_request_from_json(value: Any, shape: str = "v1") -> CompletionRequest:
    """`shape` "v1"; legacy "0.3" has no `echo`; legacy "0.2" has no logprobs and optional special tokens."""
    request = Fields(value, "struct CompletionRequest")
    params = Fields(request.required("params"), "struct CompletionParams")
    v0_2 = shape == "0.2"
    return CompletionRequest(
        model=request.string("model"),
        prompt=request.string("prompt"),
        params=CompletionParams(
            max_tokens=params.optional_uint("max_tokens"),
            temperature=params.optional_float("temperature"),
            top_k=params.optional_uint("top_k"),
            top_p=params.optional_float("top_p"),
            stop=params.strings("stop"),
            return_special_tokens=params.boolean("return_special_tokens", False if v0_2 else None),
            frequency_penalty=params.optional_float("frequency_penalty"),
            presence_penalty=params.optional_float("presence_penalty"),
            logprobs=Logprobs() if v0_2 else logprobs_from_json(params.required("logprobs")),
            echo=params.boolean("echo", False) if shape == "v1" else False,
        ),
    )


def tool_call_from_json(value: Any) -> ToolCall:
    call = Fields(value, "struct ToolCall")
    return ToolCall(call.string("id"), call.string("name"), call.string("arguments"))


def message_from_json(value: Any) -> Message:
    """A v1/v2 input message; content rules as PhariaEngine's conversion (a `CsiError` is a 500)."""
    message = Fields(value, "struct Message")
    role = message.string("role")
    content = message.optional_string("content")
    if role == "assistant":
        calls = message.value.get("tool_calls")
        tool_calls = None if calls is None else [tool_call_from_json(c) for c in sequence(calls)]
        return Message(role, content, tool_calls=tool_calls)
    if role == "tool":
        if content is None:
            raise CsiError("Tool message must have content")
        return Message(role, content, tool_call_id=message.optional_string("tool_call_id") or "")
    if content is None:
        raise CsiError("Non-assistant message must have content")
    return Message(role, content)


def _function(value: Any) -> Function:
    function = Fields(value, "struct Function")
    strict = function.value.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise ValueError(f"invalid type: {_kind(strict)}, expected a boolean")
    return Function(
        function.string("name"),
        function.optional_string("description"),
        function.value.get("parameters"),
        strict,
    )


def _tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("none", "auto", "required"):
        return ToolChoice(value)
    if isinstance(value, dict) and set(value) == {"named"}:
        return ToolChoice("named", Fields(value, "named").string("named"))
    raise ValueError("unknown variant, expected one of `none`, `auto`, `required`, `named`")


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    if value in ("text", "json_object"):
        return ResponseFormat(value)
    if isinstance(value, dict) and set(value) == {"json_schema"}:
        schema = Fields(value["json_schema"], "struct JsonSchema")
        strict = schema.value.get("strict")
        return ResponseFormat(
            "json_schema",
            JsonSchema(
                schema.string("name"),
                schema.optional_string("description"),
                schema.value.get("schema"),
                strict if isinstance(strict, bool) else None,
            ),
        )
    raise ValueError("unknown variant, expected one of `text`, `json_object`, `json_schema`")


def _reasoning_effort(value: Any) -> Any:
    if value is None or value in ("low", "medium", "high"):
        return value
    raise ValueError("unknown variant, expected one of `low`, `medium`, `high`")


def chat_request_from_json(value: Any, version: int = 1, full: bool = True) -> ChatRequest:
    """v1/v2 shape (`full`), or the legacy 0.3 shape with `{role, content}` messages only.

    v2, and v1 with tools, use the "v2" chat path (tool calls and reasoning in the answer); plain v1 keeps
    the "v1" validation (content present, no tool calls)."""
    request = Fields(value, "struct ChatRequest")
    params = Fields(request.required("params"), "struct ChatParams")
    if full:
        messages = [message_from_json(m) for m in request.items("messages")]
        tools = params.value.get("tools")
        functions = None if tools is None else [_function(t) for t in sequence(tools)]
    else:
        messages = [
            Message(m.string("role"), m.string("content"))
            for m in (Fields(v, "struct Message") for v in request.items("messages"))
        ]
        functions = None
    parallel = params.value.get("parallel_tool_calls") if full else None
    if parallel is not None and not isinstance(parallel, bool):
        raise ValueError(f"invalid type: {_kind(parallel)}, expected a boolean")
    return ChatRequest(
        model=request.string("model"),
        messages=messages,
        params=ChatParams(
            max_tokens=params.optional_uint("max_tokens"),
            max_completion_tokens=params.optional_uint("max_completion_tokens") if full else None,
            temperature=params.optional_float("temperature"),
            top_p=params.optional_float("top_p"),
            frequency_penalty=params.optional_float("frequency_penalty"),
            presence_penalty=params.optional_float("presence_penalty"),
            logprobs=logprobs_from_json(params.value.get("logprobs", "no")),
            tools=functions,
            tool_choice=_tool_choice(params.value.get("tool_choice")) if full else None,
            parallel_tool_calls=parallel,
            response_format=_response_format(params.value.get("response_format")) if full else None,
            reasoning_effort=_reasoning_effort(params.value.get("reasoning_effort")) if full else None,
        ),
        v2=full and (version == 2 or functions is not None),
    )


def explanation_request_from_json(value: Any) -> ExplanationRequest:
    request = Fields(value, "struct ExplanationRequest")
    granularity = request.string("granularity")
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown variant `{granularity}`, expected one of {', '.join(GRANULARITIES)}")
    return ExplanationRequest(
        request.string("prompt"),
        request.string("target"),
        request.string("model"),
        granularity,  # type: ignore[arg-type]
    )


def _logprob(logprob: Logprob) -> dict[str, Any]:
    value = None if math.isnan(logprob.logprob) else logprob.logprob
    return {"token": list(logprob.token), "logprob": value}


def distributions_to_json(distributions: list[Distribution]) -> list[dict[str, Any]]:
    return [{"sampled": _logprob(d.sampled), "top": [_logprob(t) for t in d.top]} for d in distributions]


def usage_to_json(usage: TokenUsage) -> dict[str, int]:
    return {"prompt": usage.prompt, "completion": usage.completion}


def completion_to_json(completion: Completion) -> dict[str, Any]:
    return {
        "text": completion.text,
        "finish_reason": completion.finish_reason.value,
        "logprobs": distributions_to_json(completion.logprobs),
        "usage": usage_to_json(completion.usage),
    }


def chat_response_to_json(
    response: ChatResponse, message: dict[str, Any], legacy: bool = False
) -> dict[str, Any]:
    """`message` is the rendered message: its keys differ between v1, v2 and the legacy shape."""
    body: dict[str, Any] = {"message": message, "finish_reason": response.finish_reason.value}
    if not legacy:
        body["logprobs"] = distributions_to_json(response.logprobs)
        body["usage"] = usage_to_json(response.usage)
    return body


def tool_calls_to_json(calls: list[ToolCall] | None) -> list[dict[str, str]] | None:
    if calls is None:
        return None
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


def text_scores_to_json(scores: list[TextScore]) -> list[dict[str, Any]]:
    return [{"start": s.start, "length": s.length, "score": s.score} for s in scores]


# -- chunking and language ---------------------------------------------------------------------------


def chunk_request_from_json(value: Any, offsets: bool = False, overlap: bool = True) -> ChunkRequest:
    request = Fields(value, "struct ChunkRequest")
    params = Fields(request.required("params"), "struct ChunkParams")
    return ChunkRequest(
        text=request.string("text"),
        params=ChunkParams(
            params.string("model"), params.uint("max_tokens"), params.uint("overlap") if overlap else 0
        ),
        character_offsets=request.boolean("character_offsets") if offsets else False,
    )


def chunk_to_json(chunk: Chunk) -> dict[str, Any]:
    return {"text": chunk.text, "byte_offset": chunk.byte_offset, "character_offset": chunk.character_offset}


def select_language_from_json(value: Any) -> SelectLanguageRequest:
    request = Fields(value, "struct SelectLanguageRequest")
    return SelectLanguageRequest(request.string("text"), request.strings("languages"))


# -- tools ---------------------------------------------------------------------------------------------


def invoke_request_from_json(value: Any) -> InvokeRequest:
    request = Fields(value, "struct InvokeRequest")
    arguments = [Fields(a, "struct Argument") for a in request.items("arguments", [])]
    return InvokeRequest(
        request.string("name"),
        [ToolArgument(a.string("name"), _compact(a.required("value")).encode()) for a in arguments],
    )


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def tool_result_to_json(result: ToolResult) -> Any:
    # Keys alphabetically, as PhariaEngine's generic JSON value prints them.
    if isinstance(result, str):
        return result
    return [{"text": text, "type": "text"} for text in result.contents]


def tool_to_json(tool: Tool) -> dict[str, Any]:
    schema = json.loads(json.dumps(tool.input_schema, sort_keys=True))
    return {"name": tool.name, "description": tool.description, "input_schema": schema}
