"""Host object for `pharia:skill@0.4.0`, and for `@0.5.0` (the same WIT behind the `alpha` feature).

Differences from 0.3 (engine-spec §4.3): chat is "v2" (messages are a variant of assistant/tool/other,
native tool calling, response formats, reasoning effort; answers carry reasoning and tool calls and are
not validated the "v1" way), chat streams add `reasoning` and `tool-call` events and lose logprobs on
appends, `finish-reason` adds `tool-calls`, there is one `complete` (with `echo`) and no `explain`, and a
stream skill may write `reasoning` items. Everything else is 0.3's: `Host04.interfaces()` binds those
WIT functions to `Host03`'s methods directly.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from wasmtime.component import Linker, ResourceHost, Variant

from skill_engine.csi import Csi
from skill_engine.csi.errors import CsiError
from skill_engine.csi.types import (
    ChatAppend,
    ChatBegin,
    ChatEnd,
    ChatEventV2,
    ChatReasoning,
    ChatRequest,
    ChatResponse,
    ChatToolCall,
    Function,
    JsonSchema,
    Message,
    ResponseFormat,
    ToolCall,
    ToolChoice,
)
from skill_engine.runtime.bindings import (
    CHAT_STREAM_TYPE,
    COMPLETION_STREAM_TYPE,
    STREAM_OUTPUT_TYPE,
    Interface,
    call_driver,
    current,
    define,
    field,
    next_event,
    open_stream,
    record,
)
from skill_engine.runtime.bindings import v0_3_convert as v3
from skill_engine.runtime.bindings.v0_3 import Host03
from skill_engine.streaming import MessageAppend, MessageBegin, MessageEnd, MessageItem, Reasoning

SEMVER = "0.4.0"
SEMVER_ALPHA = "0.5.0"


# -- wasm -> domain ---------------------------------------------------------------------------------


def _json(raw: bytes | None, what: str) -> object:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CsiError(f"The {what} of the chat request is not valid JSON: {e}") from None


def to_tool_calls(calls: list[Any] | None) -> list[ToolCall] | None:
    if calls is None:
        return None
    return [ToolCall(field(c, "id"), field(c, "name"), field(c, "arguments")) for c in calls]


def to_message(value: Variant) -> Message:
    payload = value.payload
    if value.tag == "assistant":
        # reasoning-content of input messages is ignored (engine-spec §4.3).
        calls = to_tool_calls(field(payload, "tool-calls"))
        return Message("assistant", field(payload, "content"), tool_calls=calls)
    if value.tag == "tool":
        return Message("tool", field(payload, "content"), tool_call_id=field(payload, "tool-call-id"))
    return Message(field(payload, "role"), field(payload, "content"))


def to_function(value: Any) -> Function:
    name = field(value, "name")
    return Function(
        name=name,
        description=field(value, "description"),
        parameters=_json(field(value, "parameters"), f"parameters of function {name}"),
        strict=field(value, "strict"),
    )


def to_tool_choice(value: Variant | None) -> ToolChoice | None:
    if value is None:
        return None
    if value.tag == "named":
        return ToolChoice("named", str(value.payload))
    kind = value.tag
    assert kind in ("none", "auto", "required")
    return ToolChoice(kind)


def to_response_format(value: Variant | None) -> ResponseFormat | None:
    if value is None:
        return None
    if value.tag == "json-schema":
        schema = value.payload
        name = field(schema, "name")
        return ResponseFormat(
            "json_schema",
            JsonSchema(
                name=name,
                description=field(schema, "description"),
                schema=_json(field(schema, "schema"), f"schema of response format {name}"),
                strict=field(schema, "strict"),
            ),
        )
    return ResponseFormat("json_object" if value.tag == "json-object" else "text")


def to_chat_request(value: Any) -> ChatRequest:
    params = field(value, "params")
    tools = field(params, "tools")
    return ChatRequest(
        model=field(value, "model"),
        messages=[to_message(m) for m in field(value, "messages")],
        params=dataclasses.replace(
            v3.to_chat_params(params),  # 0.3's fields, then 0.4's own
            max_completion_tokens=field(params, "max-completion-tokens"),
            tools=None if tools is None else [to_function(t) for t in tools],
            tool_choice=to_tool_choice(field(params, "tool-choice")),
            parallel_tool_calls=field(params, "parallel-tool-calls"),
            response_format=to_response_format(field(params, "response-format")),
            reasoning_effort=field(params, "reasoning-effort"),
        ),
        v2=True,
    )


def to_message_item(item: Variant) -> MessageItem | Reasoning:
    """0.4's `message-item` has two string cases, so wasmtime-py hands it over tagged."""
    if item.tag == "message-begin":
        return MessageBegin(field(item.payload, "role"))
    if item.tag == "message-append":
        return MessageAppend(str(item.payload))
    if item.tag == "reasoning":
        return Reasoning(str(item.payload))
    return MessageEnd(item.payload)


# -- domain -> wasm ---------------------------------------------------------------------------------


def from_tool_calls(calls: list[ToolCall] | None) -> list[Any] | None:
    if calls is None:
        return None
    return [record(id=c.id, name=c.name, arguments=c.arguments) for c in calls]


def from_chat_response(response: ChatResponse) -> Any:
    message = response.message
    return record(
        message=record(
            content=message.content,
            reasoning_content=message.reasoning_content,
            tool_calls=from_tool_calls(message.tool_calls),
        ),
        finish_reason=v3.from_finish_reason(response.finish_reason),
        logprobs=v3.from_distributions(response.logprobs),
        usage=v3.from_usage(response.usage),
    )


def from_chat_event(event: ChatEventV2 | None) -> Variant | None:
    if event is None:
        return None
    if isinstance(event, ChatBegin):
        return Variant("message-begin", event.role)
    if isinstance(event, ChatReasoning):
        return Variant("reasoning", event.text)
    if isinstance(event, ChatAppend):
        return Variant("message-append", record(content=event.content))
    if isinstance(event, ChatEnd):
        return Variant("message-end", v3.from_finish_reason(event.finish_reason))
    if isinstance(event, ChatToolCall):
        chunks = [record(index=c.index, id=c.id, name=c.name, arguments=c.arguments) for c in event.chunks]
        return Variant("tool-call", chunks)
    return Variant("usage", v3.from_usage(event.usage))


# -- the host object -----------------------------------------------------------------------------------


class Host04:
    """The imports of the 0.4 worlds (and of 0.5, served at another semver): 0.4's own chat and output
    methods, everything else `Host03`'s."""

    def __init__(self, csi: Csi, v0_3: Host03, semver: str = SEMVER) -> None:
        self.csi = csi
        self.v0_3 = v0_3
        self.semver = semver

    def chat(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [to_chat_request(r) for r in requests]
        responses = call_driver("chat", self.csi.inference.chat(domain, ctx), len(domain))
        return [from_chat_response(r) for r in responses]

    def chat_stream(self, _store: Any, init: Any) -> ResourceHost:
        invocation = current()
        request = to_chat_request(init)
        stream = open_stream("chat-stream", lambda: self.csi.inference.chat_stream(request, invocation.ctx))
        return ResourceHost.own(invocation.add_resource(stream), CHAT_STREAM_TYPE)

    def chat_stream_next(self, store: Any, self_: Any) -> Variant | None:
        rep = self_.to_host(store).rep
        stream = current().resources[rep]
        event: ChatEventV2 | None = next_event("chat-stream.next", stream)
        return from_chat_event(event)

    def stream_output_write(self, store: Any, self_: Any, item: Variant) -> None:
        self_.to_host(store)
        current().emit(to_message_item(item))

    def interfaces(self) -> dict[str, Interface]:
        shared = self.v0_3
        return {
            "inference": Interface(
                {
                    "chat": self.chat,
                    "complete": shared.complete_v2,  # 0.4's completion params are 0.3's v2 ones
                    "[constructor]chat-stream": self.chat_stream,
                    "[method]chat-stream.next": self.chat_stream_next,
                    "[constructor]completion-stream": shared.completion_stream,
                    "[method]completion-stream.next": shared.completion_stream_next,
                },
                {"chat-stream": CHAT_STREAM_TYPE, "completion-stream": COMPLETION_STREAM_TYPE},
            ),
            **shared.kept_by_0_4(),  # chunking, document-index, language, tool
            "streaming-output": Interface(
                {"[method]stream-output.write": self.stream_output_write},
                {"stream-output": STREAM_OUTPUT_TYPE},
            ),
        }

    def bind(self, linker: Linker) -> None:
        define(linker, self.semver, self.interfaces())
