"""Conversions of `pharia:skill@0.3` values: wasm records and variants ⇄ `skill_engine.csi.types`.

`to_*` reads what a guest passed, `from_*` builds what it receives. 0.2 and 0.4 reuse the ones their WIT
shares with 0.3.
"""

from __future__ import annotations

import json
from typing import Any

from wasmtime.component import Variant

from skill_engine.csi.chunking import Chunk, ChunkParams, ChunkRequest
from skill_engine.csi.language import SelectLanguageRequest
from skill_engine.csi.types import (
    ChatAppend,
    ChatBegin,
    ChatEnd,
    ChatEvent,
    ChatParams,
    ChatRequest,
    ChatResponse,
    Completion,
    CompletionAppend,
    CompletionEnd,
    CompletionEvent,
    CompletionParams,
    CompletionRequest,
    Distribution,
    Document,
    DocumentPath,
    ExplanationRequest,
    FinishReason,
    IndexPath,
    InvokeRequest,
    Json,
    Logprobs,
    Message,
    MetadataCondition,
    MetadataFilter,
    SearchFilter,
    SearchRequest,
    SearchResult,
    TextContent,
    TextCursor,
    TextScore,
    TokenUsage,
    Tool,
    ToolArgument,
    ToolOutput,
    ToolResult,
)
from skill_engine.runtime.bindings import field, record
from skill_engine.streaming import MessageAppend, MessageBegin, MessageEnd

# -- wasm -> domain ---------------------------------------------------------------------------------


def to_logprobs(value: Variant) -> Logprobs:
    if value.tag == "top":
        return Logprobs("top", int(value.payload))
    if value.tag == "sampled":
        return Logprobs("sampled")
    return Logprobs("no")


def to_chat_params(params: Any) -> ChatParams:
    """0.3's `chat-params`; 0.4's add their own fields to these (v0_4.py)."""
    return ChatParams(
        max_tokens=field(params, "max-tokens"),
        temperature=field(params, "temperature"),
        top_p=field(params, "top-p"),
        frequency_penalty=field(params, "frequency-penalty"),
        presence_penalty=field(params, "presence-penalty"),
        logprobs=to_logprobs(field(params, "logprobs")),
    )


def to_chat_request(value: Any) -> ChatRequest:
    return ChatRequest(
        model=field(value, "model"),
        messages=[Message(field(m, "role"), field(m, "content")) for m in field(value, "messages")],
        params=to_chat_params(field(value, "params")),
    )


def to_completion_request(value: Any, echo: bool = False) -> CompletionRequest:
    params = field(value, "params")
    return CompletionRequest(
        model=field(value, "model"),
        prompt=field(value, "prompt"),
        params=CompletionParams(
            max_tokens=field(params, "max-tokens"),
            temperature=field(params, "temperature"),
            top_k=field(params, "top-k"),
            top_p=field(params, "top-p"),
            stop=list(field(params, "stop")),
            return_special_tokens=field(params, "return-special-tokens"),
            frequency_penalty=field(params, "frequency-penalty"),
            presence_penalty=field(params, "presence-penalty"),
            logprobs=to_logprobs(field(params, "logprobs")),
            echo=field(params, "echo") if echo else False,
        ),
    )


_FILTER_KINDS: dict[str, Any] = {"with-all": "with", "with-one-of": "with_one_of", "without": "without"}


def to_metadata_filter(value: Any) -> MetadataFilter:
    condition: Variant = field(value, "condition")
    kind = condition.tag.replace("-", "_")
    # `metadata-field-value` (string/s64/bool) is untagged: the payload is a str, int or bool already.
    payload = True if kind == "is_null" else condition.payload
    return MetadataFilter(field(value, "field"), MetadataCondition(kind, payload))


def to_search_request(value: Any) -> SearchRequest:
    index = field(value, "index-path")
    filters: list[Variant] = field(value, "filters")
    return SearchRequest(
        index_path=IndexPath(field(index, "namespace"), field(index, "collection"), field(index, "index")),
        query=field(value, "query"),
        max_results=field(value, "max-results"),
        min_score=field(value, "min-score"),
        filters=[
            SearchFilter(_FILTER_KINDS[f.tag], [to_metadata_filter(m) for m in f.payload]) for f in filters
        ],
    )


def to_document_path(value: Any) -> DocumentPath:
    return DocumentPath(field(value, "namespace"), field(value, "collection"), field(value, "name"))


def to_chunk_request(value: Any, character_offsets: bool = False) -> ChunkRequest:
    params = field(value, "params")
    return ChunkRequest(
        text=field(value, "text"),
        params=ChunkParams(field(params, "model"), field(params, "max-tokens"), field(params, "overlap")),
        character_offsets=character_offsets and field(value, "character-offsets"),
    )


def to_explanation_request(value: Any) -> ExplanationRequest:
    return ExplanationRequest(
        prompt=field(value, "prompt"),
        target=field(value, "target"),
        model=field(value, "model"),
        granularity=field(value, "granularity"),
    )


# -- domain -> wasm ---------------------------------------------------------------------------------


def from_document_path(path: DocumentPath) -> Any:
    return record(namespace=path.namespace, collection=path.collection, name=path.name)


def from_search_result(result: SearchResult) -> Any:
    return record(
        document_path=from_document_path(result.document_path),
        content=result.content,
        score=float(result.score),
        start=from_cursor(result.start),
        end=from_cursor(result.end),
    )


def from_cursor(cursor: TextCursor) -> Any:
    return record(item=cursor.item, position=cursor.position)


def from_metadata(metadata: Json) -> bytes | None:
    if metadata is None:
        return None
    return json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode()


def from_document(document: Document) -> Any:
    # `modality` (text(string) | image) is untagged: a str is text, None is an image.
    return record(
        path=from_document_path(document.path),
        contents=[c.text if isinstance(c, TextContent) else None for c in document.contents],
        metadata=from_metadata(document.metadata),
    )


def from_finish_reason(reason: FinishReason) -> str:
    # 0.3 has no tool-calls reason; chat "v1" validation rejects tool calls before this point.
    return reason.value.replace("_", "-")


def from_distributions(distributions: list[Distribution]) -> list[Any]:
    return [
        record(
            sampled=record(token=d.sampled.token, logprob=d.sampled.logprob),
            top=[record(token=t.token, logprob=t.logprob) for t in d.top],
        )
        for d in distributions
    ]


def from_usage(usage: TokenUsage) -> Any:
    return record(prompt=usage.prompt, completion=usage.completion)


def from_chat_response(response: ChatResponse) -> Any:
    return record(
        message=record(role=response.message.role, content=response.message.content or ""),
        finish_reason=from_finish_reason(response.finish_reason),
        logprobs=from_distributions(response.logprobs),
        usage=from_usage(response.usage),
    )


def from_completion(completion: Completion) -> Any:
    return record(
        text=completion.text,
        finish_reason=from_finish_reason(completion.finish_reason),
        logprobs=from_distributions(completion.logprobs),
        usage=from_usage(completion.usage),
    )


def from_chat_event(event: ChatEvent | None) -> Variant | None:
    if event is None:
        return None
    if isinstance(event, ChatBegin):
        return Variant("message-begin", event.role)
    if isinstance(event, ChatAppend):
        return Variant(
            "message-append", record(content=event.content, logprobs=from_distributions(event.logprobs))
        )
    if isinstance(event, ChatEnd):
        return Variant("message-end", from_finish_reason(event.finish_reason))
    return Variant("usage", from_usage(event.usage))


def from_completion_event(event: CompletionEvent | None) -> Variant | None:
    if event is None:
        return None
    if isinstance(event, CompletionAppend):
        return Variant("append", record(text=event.text, logprobs=from_distributions(event.logprobs)))
    if isinstance(event, CompletionEnd):
        return Variant("end", from_finish_reason(event.finish_reason))
    return Variant("usage", from_usage(event.usage))


def from_chunk(chunk: Chunk) -> Any:
    return record(text=chunk.text, byte_offset=chunk.byte_offset, character_offset=chunk.character_offset)


def from_text_score(score: TextScore) -> Any:
    return record(start=score.start, length=score.length, score=score.score)


def to_message_item(item: Any) -> MessageBegin | MessageAppend | MessageEnd:
    """`message-item` is untagged in wasmtime-py: a record, a string, or bytes/None."""
    if isinstance(item, str):
        return MessageAppend(item)
    if item is None or isinstance(item, bytes):
        return MessageEnd(item)
    return MessageBegin(field(item, "role"))


def to_invoke_request(value: Any) -> InvokeRequest:
    return InvokeRequest(
        field(value, "tool-name"),
        [ToolArgument(field(a, "name"), field(a, "value")) for a in field(value, "arguments")],
    )


def from_tool_result(result: ToolResult) -> Any:
    # `result<list<modality>, string>` is untagged: a list is Ok, a str is Err; `modality` is a plain str.
    return list(result.contents) if isinstance(result, ToolOutput) else result


def to_select_language_request(value: Any) -> SelectLanguageRequest:
    return SelectLanguageRequest(field(value, "text"), list(field(value, "languages")))


def from_tool(tool: Tool) -> Any:
    return record(
        name=tool.name, description=tool.description, input_schema=json.dumps(tool.input_schema).encode()
    )
