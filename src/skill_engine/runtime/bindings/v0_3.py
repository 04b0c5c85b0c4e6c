"""Host object for `pharia:skill@0.3.x` (0.3.0 – 0.3.11): one method per WIT function of the line.

wasmtime matches imports by semver, so defining `@0.3.11` satisfies components built against any 0.3.x,
and the export lookup by the 0.3.11 name finds older 0.3 exports too (wasmtime-host.md §6). Conversions
of the values live in `v0_3_convert`.
"""

from __future__ import annotations

from typing import Any

from wasmtime.component import Linker, ResourceHost, Variant

from skill_engine.csi import Csi
from skill_engine.csi.types import ToolOutput
from skill_engine.runtime.bindings import (
    CHAT_STREAM_TYPE,
    COMPLETION_STREAM_TYPE,
    PACKAGE,
    STREAM_OUTPUT_TYPE,
    Interface,
    call_driver,
    current,
    define,
    next_event,
    open_stream,
)
from skill_engine.runtime.bindings import v0_3_convert as wit
from skill_engine.streaming import ToolBegin, ToolEnd, ToolError

VERSION = "0.3"
SEMVER = "0.3.11"
SKILL_HANDLER = f"{PACKAGE}/skill-handler@{SEMVER}"
MESSAGE_STREAM = f"{PACKAGE}/message-stream@{SEMVER}"


class Host03:
    """The imports of the 0.3 worlds. Methods take the store first, as wasmtime calls them."""

    def __init__(self, csi: Csi) -> None:
        self.csi = csi

    # -- inference ------------------------------------------------------------------------------------

    def chat(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [wit.to_chat_request(r) for r in requests]
        responses = call_driver("chat", self.csi.inference.chat(domain, ctx), len(domain))
        return [wit.from_chat_response(r) for r in responses]

    def complete(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [wit.to_completion_request(r) for r in requests]
        completions = call_driver("complete", self.csi.inference.complete(domain, ctx), len(domain))
        return [wit.from_completion(c) for c in completions]

    def complete_v2(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [wit.to_completion_request(r, echo=True) for r in requests]
        completions = call_driver("complete-v2", self.csi.inference.complete(domain, ctx), len(domain))
        return [wit.from_completion(c) for c in completions]

    def explain(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [wit.to_explanation_request(r) for r in requests]
        explanations = call_driver("explain", self.csi.inference.explain(domain, ctx), len(domain))
        return [[wit.from_text_score(s) for s in scores] for scores in explanations]

    def chat_stream(self, _store: Any, init: Any) -> ResourceHost:
        invocation = current()
        request = wit.to_chat_request(init)
        stream = open_stream("chat-stream", lambda: self.csi.inference.chat_stream(request, invocation.ctx))
        return ResourceHost.own(invocation.add_resource(stream), CHAT_STREAM_TYPE)

    def chat_stream_next(self, store: Any, self_: Any) -> Variant | None:
        rep = self_.to_host(store).rep
        stream = current().resources[rep]
        return wit.from_chat_event(next_event("chat-stream.next", stream))

    def completion_stream(self, _store: Any, init: Any) -> ResourceHost:
        invocation = current()
        request = wit.to_completion_request(init)
        stream = open_stream(
            "completion-stream", lambda: self.csi.inference.completion_stream(request, invocation.ctx)
        )
        return ResourceHost.own(invocation.add_resource(stream), COMPLETION_STREAM_TYPE)

    def completion_stream_next(self, store: Any, self_: Any) -> Variant | None:
        rep = self_.to_host(store).rep
        stream = current().resources[rep]
        return wit.from_completion_event(next_event("completion-stream.next", stream))

    # -- chunking, language -----------------------------------------------------------------------------

    def chunk(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [wit.to_chunk_request(r) for r in requests]
        return call_driver("chunk", self.csi.chunking.chunk(domain, ctx), len(domain))

    def chunk_with_offsets(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [wit.to_chunk_request(r, character_offsets=True) for r in requests]
        results = call_driver(
            "chunk-with-offsets", self.csi.chunking.chunk_with_offsets(domain, ctx), len(domain)
        )
        return [[wit.from_chunk(c) for c in chunks] for chunks in results]

    def select_language(self, _store: Any, requests: list[Any]) -> list[Any]:
        current()
        domain = [wit.to_select_language_request(r) for r in requests]
        return call_driver("select-language", self.csi.language.select_language(domain), len(domain))

    # -- document index ---------------------------------------------------------------------------------

    def search(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        domain = [wit.to_search_request(r) for r in requests]
        results = call_driver("search", self.csi.documents.search(domain, ctx), len(domain))
        return [[wit.from_search_result(r) for r in batch] for batch in results]

    def documents(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        paths = [wit.to_document_path(r) for r in requests]
        found = call_driver("documents", self.csi.documents.documents(paths, ctx), len(paths))
        return [wit.from_document(d) for d in found]

    def document_metadata(self, _store: Any, requests: list[Any]) -> list[Any]:
        ctx = current().ctx
        paths = [wit.to_document_path(r) for r in requests]
        found = call_driver("document-metadata", self.csi.documents.document_metadata(paths, ctx), len(paths))
        return [wit.from_metadata(m) for m in found]

    # -- tools ------------------------------------------------------------------------------------------

    def invoke_tool(self, _store: Any, requests: list[Any]) -> list[Any]:
        invocation = current()
        domain = [wit.to_invoke_request(r) for r in requests]
        for request in domain:
            invocation.emit(ToolBegin(request.name))
        ctx = invocation.ctx
        invoked = self.csi.tools.invoke(ctx.namespace, domain, ctx.token)
        results = call_driver("invoke-tool", invoked, len(domain))
        for request, result in zip(domain, results, strict=True):
            invocation.emit(
                ToolEnd(request.name) if isinstance(result, ToolOutput) else ToolError(request.name, result)
            )
        return [wit.from_tool_result(r) for r in results]

    def list_tools(self, _store: Any) -> list[Any]:
        ctx = current().ctx
        tools = call_driver("list-tools", self.csi.tools.list_tools_for(ctx.namespace, ctx.token), 1)
        return [wit.from_tool(t) for t in tools]

    # -- streaming output -------------------------------------------------------------------------------

    def stream_output_write(self, store: Any, self_: Any, item: Any) -> None:
        self_.to_host(store)
        current().emit(wit.to_message_item(item))

    # -- the line's interfaces ----------------------------------------------------------------------------

    def interfaces(self) -> dict[str, Interface]:
        return {
            "inference": Interface(
                {
                    "chat": self.chat,
                    "complete": self.complete,
                    "complete-v2": self.complete_v2,
                    "explain": self.explain,
                    "[constructor]chat-stream": self.chat_stream,
                    "[method]chat-stream.next": self.chat_stream_next,
                    "[constructor]completion-stream": self.completion_stream,
                    "[method]completion-stream.next": self.completion_stream_next,
                },
                {"chat-stream": CHAT_STREAM_TYPE, "completion-stream": COMPLETION_STREAM_TYPE},
            ),
            **self.kept_by_0_4(),
            "streaming-output": Interface(
                {"[method]stream-output.write": self.stream_output_write},
                {"stream-output": STREAM_OUTPUT_TYPE},
            ),
        }

    def kept_by_0_4(self) -> dict[str, Interface]:
        """The interfaces 0.4 (and 0.5) took over from 0.3 unchanged: `Host04` binds these same methods."""
        return {
            "chunking": Interface({"chunk": self.chunk, "chunk-with-offsets": self.chunk_with_offsets}),
            "document-index": Interface(
                {
                    "search": self.search,
                    "document-metadata": self.document_metadata,
                    "documents": self.documents,
                }
            ),
            "language": Interface({"select-language": self.select_language}),
            "tool": Interface({"invoke-tool": self.invoke_tool, "list-tools": self.list_tools}),
        }

    def bind(self, linker: Linker) -> None:
        define(linker, SEMVER, self.interfaces())
