"""The `/csi/v1` and `/csi/v2` functions: each parses its body, calls the driver and renders JSON, or an
SSE stream whose failures after the start are an `error` event."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response, StreamingResponse

from skill_engine.api import csi_documents as docs_json
from skill_engine.api import csi_json as js
from skill_engine.csi import Csi, CsiContext
from skill_engine.csi.errors import CsiError, CsiRefusal
from skill_engine.csi.types import (
    ChatAppend,
    ChatBegin,
    ChatEnd,
    ChatEventV2,
    ChatReasoning,
    ChatResponse,
    ChatToolCall,
    CompletionAppend,
    CompletionEnd,
    CompletionEvent,
)
from skill_engine.governance import audit
from skill_engine.streaming import error_event, sse

log = logging.getLogger("skill_engine.api")


@dataclass(frozen=True)
class Function:
    """One CSI function: `parse` turns the body into requests (ValueError ⇒ 422, CsiError ⇒ 500),
    `run` calls the driver and returns JSON (or a ready response, for streams)."""

    parse: Callable[[Any, int], Any]
    """(body, version) → requests."""
    run: Callable[[Any, CsiContext, int], Awaitable[Any]]


def _batch(parse_one: Callable[[Any], Any]) -> Callable[[Any, int], list[Any]]:
    return lambda body, _version: [parse_one(item) for item in js.sequence(body)]


def _single(parse: Callable[[Any], Any]) -> Callable[[Any, int], Any]:
    return lambda body, _version: parse(body)


def _sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        events, headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
    )


class CsiFunctions:
    """Every versioned CSI function by its URL name, run against one `Csi`."""

    def __init__(self, csi: Csi) -> None:
        self.csi = csi
        self.by_name: dict[str, Function] = {
            "complete": Function(_batch(js.completion_request_from_json), self._complete),
            "completion_stream": Function(_single(js.completion_request_from_json), self._completion_stream),
            "chat": Function(
                lambda body, version: [js.chat_request_from_json(r, version) for r in js.sequence(body)],
                self._chat,
            ),
            "chat_stream": Function(js.chat_request_from_json, self._chat_stream),
            "explain": Function(_batch(js.explanation_request_from_json), self._explain),
            "chunk": Function(_batch(js.chunk_request_from_json), self._chunk),
            "chunk_with_offsets": Function(
                _batch(lambda r: js.chunk_request_from_json(r, offsets=True)), self._chunk_with_offsets
            ),
            "select_language": Function(_batch(js.select_language_from_json), self._select_language),
            "search": Function(_single(docs_json.search_requests_from_json), self._search),
            "documents": Function(_single(docs_json.document_paths_from_json), self._documents),
            "document_metadata": Function(
                _single(docs_json.document_paths_from_json), self._document_metadata
            ),
            "invoke_tool": Function(_single(self._parse_invoke), self._invoke_tool),
            "list_tools": Function(
                _single(lambda b: js.Fields(b, "struct ListTools").string("namespace")), self._list_tools
            ),
        }

    # -- inference ----------------------------------------------------------------------------------

    async def _complete(self, requests: list[Any], ctx: CsiContext, version: int) -> Any:
        return [js.completion_to_json(c) for c in await self.csi.inference.complete(requests, ctx)]

    async def _explain(self, requests: list[Any], ctx: CsiContext, version: int) -> Any:
        return [js.text_scores_to_json(s) for s in await self.csi.inference.explain(requests, ctx)]

    @staticmethod
    def _message(response: ChatResponse, version: int) -> dict[str, Any]:
        message = response.message
        rendered: dict[str, Any] = {"role": "assistant", "content": message.content}
        if version == 2:
            rendered["reasoning_content"] = message.reasoning_content
        rendered["tool_call_id"] = None
        rendered["tool_calls"] = js.tool_calls_to_json(message.tool_calls)
        return rendered

    async def _chat(self, requests: list[Any], ctx: CsiContext, version: int) -> Any:
        responses = await self.csi.inference.chat(requests, ctx)
        return [js.chat_response_to_json(r, self._message(r, version)) for r in responses]

    async def _completion_stream(self, request: Any, ctx: CsiContext, version: int) -> Response:
        def render(event: CompletionEvent) -> list[bytes]:
            if isinstance(event, CompletionAppend):
                return [
                    sse("append", {"text": event.text, "logprobs": js.distributions_to_json(event.logprobs)})
                ]
            if isinstance(event, CompletionEnd):
                return [sse("end", {"finish_reason": event.finish_reason.value})]
            return [sse("usage", {"usage": js.usage_to_json(event.usage)})]

        return _sse_response(self._events(lambda: self.csi.inference.completion_stream(request, ctx), render))

    async def _chat_stream(self, request: Any, ctx: CsiContext, version: int) -> Response:
        def render(event: ChatEventV2) -> list[bytes]:
            if isinstance(event, ChatBegin):
                return [sse("message_begin", {"role": event.role})]
            if isinstance(event, ChatAppend):
                if version == 1:
                    logprobs = js.distributions_to_json(event.logprobs)
                    return [sse("message_append", {"content": event.content, "logprobs": logprobs})]
                return [sse("message_append", {"content": event.content})]
            if isinstance(event, ChatReasoning):
                return [sse("reasoning", {"content": event.text})] if version == 2 else []
            if isinstance(event, ChatToolCall):
                calls = [
                    {"index": c.index, "id": c.id, "name": c.name, "arguments": c.arguments}
                    for c in event.chunks
                ]
                return [sse("tool_call", {"tool_calls": calls})]
            if isinstance(event, ChatEnd):
                return [sse("message_end", {"finish_reason": event.finish_reason.value})]
            return [sse("usage", {"usage": js.usage_to_json(event.usage)})]

        return _sse_response(self._events(lambda: self.csi.inference.chat_stream(request, ctx), render))

    @staticmethod
    async def _events(
        open_stream: Callable[[], Awaitable[Any]], render: Callable[[Any], list[bytes]]
    ) -> AsyncIterator[bytes]:
        stream = None
        try:
            stream = await open_stream()
            while (event := await stream.next()) is not None:
                for chunk in render(event):
                    yield chunk
        except CsiRefusal as e:
            audit.failed(e.kind)
            yield error_event(e.text)
        except CsiError as e:
            yield error_event(str(e))
        except Exception as e:  # a bug of ours must still end the stream with an error event
            log.exception("CSI stream failed")
            yield error_event(f"Internal error: {type(e).__name__}")
        finally:
            if stream is not None:
                stream.close()

    # -- chunking, language, documents ---------------------------------------------------------------

    async def _chunk(self, requests: list[Any], ctx: CsiContext, version: int) -> Any:
        return await self.csi.chunking.chunk(requests, ctx)

    async def _chunk_with_offsets(self, requests: list[Any], ctx: CsiContext, version: int) -> Any:
        results = await self.csi.chunking.chunk_with_offsets(requests, ctx)
        return [[js.chunk_to_json(c) for c in chunks] for chunks in results]

    async def _select_language(self, requests: list[Any], ctx: CsiContext, version: int) -> Any:
        return await self.csi.language.select_language(requests)

    async def _search(self, requests: list[Any], ctx: CsiContext, version: int) -> Any:
        return docs_json.search_results_to_json(await self.csi.documents.search(requests, ctx))

    async def _documents(self, paths: list[Any], ctx: CsiContext, version: int) -> Any:
        return docs_json.documents_to_json(await self.csi.documents.documents(paths, ctx))

    async def _document_metadata(self, paths: list[Any], ctx: CsiContext, version: int) -> Any:
        return docs_json.metadata_to_json(await self.csi.documents.document_metadata(paths, ctx))

    # -- tools -----------------------------------------------------------------------------------------

    @staticmethod
    def _parse_invoke(body: Any) -> tuple[str, list[Any]]:
        fields = js.Fields(body, "struct InvokeTools")
        return fields.string("namespace"), [js.invoke_request_from_json(r) for r in fields.items("requests")]

    async def _invoke_tool(self, parsed: tuple[str, list[Any]], ctx: CsiContext, version: int) -> Any:
        namespace, requests = parsed
        audit.acting_for(namespace)
        results = await self.csi.tools.invoke(namespace, requests, ctx.token, over_http=True)
        return [js.tool_result_to_json(r) for r in results]

    async def _list_tools(self, namespace: str, ctx: CsiContext, version: int) -> Any:
        audit.acting_for(namespace)
        return [js.tool_to_json(t) for t in await self.csi.tools.list_for_http(namespace, ctx.token)]

    # -- legacy `POST /csi` ----------------------------------------------------------------------------
