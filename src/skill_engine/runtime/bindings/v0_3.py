"""Bindings for `pharia:skill@0.3.x` (0.3.0 – 0.3.11): one Linker definition serves the whole line.

wasmtime matches imports by semver, so defining `@0.3.11` satisfies components built against any 0.3.x,
and the export lookup by the 0.3.11 name finds older 0.3 exports too (wasmtime-host.md §6).
"""

from __future__ import annotations

import json
from typing import Any

from wasmtime.component import Linker, ResourceHost, ResourceType, Variant

from skill_engine.csi import Csi
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
    ToolArgument,
    ToolOutput,
    ToolResult,
)
from skill_engine.runtime.bindings import (
    add_functions,
    call_driver,
    current,
    current_or_none,
    field,
    record,
)
from skill_engine.streaming import MessageAppend, MessageBegin, MessageEnd, ToolBegin, ToolEnd, ToolError

VERSION = "0.3"
PACKAGE = "pharia:skill"
SEMVER = "0.3.11"
SKILL_HANDLER = f"{PACKAGE}/skill-handler@{SEMVER}"
MESSAGE_STREAM = f"{PACKAGE}/message-stream@{SEMVER}"

CHAT_STREAM_TYPE = 31
COMPLETION_STREAM_TYPE = 32
STREAM_OUTPUT_TYPE = 33


def _interface(name: str) -> str:
    return f"{PACKAGE}/{name}@{SEMVER}"


# -- wasm -> domain ---------------------------------------------------------------------------------


def to_logprobs(value: Variant) -> Logprobs:
    if value.tag == "top":
        return Logprobs("top", int(value.payload))
    if value.tag == "sampled":
        return Logprobs("sampled")
    return Logprobs("no")


def to_chat_request(value: Any) -> ChatRequest:
    params = field(value, "params")
    return ChatRequest(
        model=field(value, "model"),
        messages=[Message(field(m, "role"), field(m, "content")) for m in field(value, "messages")],
        params=ChatParams(
            max_tokens=field(params, "max-tokens"),
            temperature=field(params, "temperature"),
            top_p=field(params, "top-p"),
            frequency_penalty=field(params, "frequency-penalty"),
            presence_penalty=field(params, "presence-penalty"),
            logprobs=to_logprobs(field(params, "logprobs")),
        ),
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


# -- registration -----------------------------------------------------------------------------------


def register(linker: Linker, csi: Csi) -> None:
    """Defines every import of the 0.3 worlds on `linker`."""

    def chat(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_chat_request(r) for r in requests]
        responses = call_driver("chat", csi.inference.chat(domain, invocation.ctx), len(domain))
        return [from_chat_response(r) for r in responses]

    def complete(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_completion_request(r) for r in requests]
        completions = call_driver("complete", csi.inference.complete(domain, invocation.ctx), len(domain))
        return [from_completion(c) for c in completions]

    def complete_v2(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_completion_request(r, echo=True) for r in requests]
        completions = call_driver("complete-v2", csi.inference.complete(domain, invocation.ctx), len(domain))
        return [from_completion(c) for c in completions]

    def explain(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_explanation_request(r) for r in requests]
        explanations = call_driver("explain", csi.inference.explain(domain, invocation.ctx), len(domain))
        return [[from_text_score(s) for s in scores] for scores in explanations]

    def chunk(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_chunk_request(r) for r in requests]
        return call_driver("chunk", csi.chunking.chunk(domain, invocation.ctx), len(domain))

    def chunk_with_offsets(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_chunk_request(r, character_offsets=True) for r in requests]
        results = call_driver(
            "chunk-with-offsets", csi.chunking.chunk_with_offsets(domain, invocation.ctx), len(domain)
        )
        return [[from_chunk(c) for c in chunks] for chunks in results]

    def select_language(_store: Any, requests: list[Any]) -> list[Any]:
        current()
        domain = [SelectLanguageRequest(field(r, "text"), list(field(r, "languages"))) for r in requests]
        return call_driver("select-language", csi.language.select_language(domain), len(domain))

    def chat_stream(_store: Any, init: Any) -> ResourceHost:
        invocation = current()
        request = to_chat_request(init)
        stream = call_driver("chat-stream", csi.inference.chat_stream(request, invocation.ctx), 1)
        return ResourceHost.own(invocation.add_resource(stream), CHAT_STREAM_TYPE)

    def chat_stream_next(store: Any, self_: Any) -> Variant | None:
        rep = self_.to_host(store).rep
        invocation = current()
        stream = invocation.resources[rep]
        return from_chat_event(call_driver("chat-stream.next", stream.next()))

    def completion_stream(_store: Any, init: Any) -> ResourceHost:
        invocation = current()
        request = to_completion_request(init)
        stream = call_driver("completion-stream", csi.inference.completion_stream(request, invocation.ctx), 1)
        return ResourceHost.own(invocation.add_resource(stream), COMPLETION_STREAM_TYPE)

    def completion_stream_next(store: Any, self_: Any) -> Variant | None:
        rep = self_.to_host(store).rep
        invocation = current()
        stream = invocation.resources[rep]
        return from_completion_event(call_driver("completion-stream.next", stream.next()))

    def invoke_tool(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_invoke_request(r) for r in requests]
        for request in domain:
            invocation.emit(ToolBegin(request.name))
        ctx = invocation.ctx
        results = call_driver("invoke-tool", csi.tools.invoke(ctx.namespace, domain, ctx.token), len(domain))
        for request, result in zip(domain, results, strict=True):
            invocation.emit(
                ToolEnd(request.name) if isinstance(result, ToolOutput) else ToolError(request.name, result)
            )
        return [from_tool_result(r) for r in results]

    def list_tools(_store: Any) -> list[Any]:
        invocation = current()
        ctx = invocation.ctx
        tools = call_driver("list-tools", csi.tools.list_tools_for(ctx.namespace, ctx.token), 1)
        return [
            record(name=t.name, description=t.description, input_schema=json.dumps(t.input_schema).encode())
            for t in tools
        ]

    def search(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [to_search_request(r) for r in requests]
        results = call_driver("search", csi.documents.search(domain, invocation.ctx), len(domain))
        return [[from_search_result(r) for r in batch] for batch in results]

    def documents(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        paths = [to_document_path(r) for r in requests]
        found = call_driver("documents", csi.documents.documents(paths, invocation.ctx), len(paths))
        return [from_document(d) for d in found]

    def document_metadata(_store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        paths = [to_document_path(r) for r in requests]
        found = call_driver(
            "document-metadata", csi.documents.document_metadata(paths, invocation.ctx), len(paths)
        )
        return [from_metadata(m) for m in found]

    def drop_resource(_store: Any, rep: int) -> None:
        invocation = current_or_none()
        if invocation is None:
            return
        resource = invocation.resources.pop(rep, None)
        close = getattr(resource, "close", None)
        if close is not None:
            close()

    def write(store: Any, self_: Any, item: Any) -> None:
        self_.to_host(store)
        current().emit(to_message_item(item))

    with linker.root() as root:
        with root.add_instance(_interface("inference")) as inference:
            inference.add_resource("chat-stream", ResourceType.host(CHAT_STREAM_TYPE), drop_resource)
            inference.add_resource(
                "completion-stream", ResourceType.host(COMPLETION_STREAM_TYPE), drop_resource
            )
            add_functions(
                inference,
                {
                    "chat": chat,
                    "complete": complete,
                    "complete-v2": complete_v2,
                    "explain": explain,
                    "[constructor]chat-stream": chat_stream,
                    "[method]chat-stream.next": chat_stream_next,
                    "[constructor]completion-stream": completion_stream,
                    "[method]completion-stream.next": completion_stream_next,
                },
            )
        with root.add_instance(_interface("chunking")) as chunking:
            add_functions(
                chunking,
                {
                    "chunk": chunk,
                    "chunk-with-offsets": chunk_with_offsets,
                },
            )
        with root.add_instance(_interface("document-index")) as document_index:
            add_functions(
                document_index,
                {
                    "search": search,
                    "document-metadata": document_metadata,
                    "documents": documents,
                },
            )
        with root.add_instance(_interface("language")) as language:
            add_functions(language, {"select-language": select_language})
        with root.add_instance(_interface("tool")) as tool:
            add_functions(
                tool,
                {
                    "invoke-tool": invoke_tool,
                    "list-tools": list_tools,
                },
            )
        with root.add_instance(_interface("streaming-output")) as output:
            output.add_resource("stream-output", ResourceType.host(STREAM_OUTPUT_TYPE), drop_resource)
            add_functions(output, {"[method]stream-output.write": write})
