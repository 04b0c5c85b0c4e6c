"""CSI over HTTP (engine-spec §2.9): `POST /csi/v1/{function}`, `/csi/v2/{function}` and the legacy
`POST /csi` envelope. The SDK's `DevCsi` uses `/csi/v1`.

Calls run with the caller's bearer token exactly as a skill's would. Errors: a body of the wrong shape is
422, a failing driver or an unconvertible request is 500 `Something went wrong: <error>` (text); streams
report failures after the start as an `error` event. The legacy envelope answers JSON strings.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from skill_engine import telemetry
from skill_engine.api import csi_documents as docs_json
from skill_engine.api import csi_json as js
from skill_engine.api.http import bearer_token, json_response, json_value, text
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
    SearchResult,
)
from skill_engine.governance import audit
from skill_engine.streaming import error_event, sse

log = logging.getLogger("skill_engine.api")

CALLER = "csi-over-http"
NAMESPACE_HEADER = "x-namespace"
"""Optional: the namespace a CSI over HTTP caller acts for. Its policy narrows the engine's baseline,
never widens it: the caller chooses it (docs/governance.md, decision 0011)."""
SHAPE_PREFIX = "Failed to deserialize the JSON body into the target type: "
FAILED_PREFIX = "Something went wrong: "
EXPLAIN_PREFIX = "We got an error from our inference driver:\n\n"
VERSION_REQUIRED = "A valid CSI version is required. Try upgrading your SDK."
VERSION_TOO_NEW = (
    "The specified CSI version is not supported by this Kernel installation yet. Try updating your Kernel "
    "version or downgrading your SDK."
)
VERSION_TOO_OLD = "This CSI version is no longer supported by the Kernel. Try upgrading your SDK."


def caller_context(request: Request, token: str | None) -> CsiContext:
    """CSI over HTTP runs under the engine's baseline policy, and the one of the namespace it names."""
    namespace = request.headers.get(NAMESPACE_HEADER, "").strip()
    if namespace:
        audit.acting_for(namespace)
    return CsiContext(namespace, CALLER, token, over_http=True)


def refused(e: CsiRefusal, as_json: bool = False) -> Response:
    audit.failed(e.kind)
    response = json_response(e.text, e.status) if as_json else text(e.text, e.status)
    response.headers.update(e.headers)
    return response


def unsupported_function(function: str) -> str:
    return (
        f"The CSI function {function} is not supported by this Kernel installation yet. Try updating your "
        "Kernel version or downgrading your SDK."
    )


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


_REQUIREMENT = re.compile(
    r"\s*(?:[=^~]|[<>]=?)?\s*v?(\d+)(?:\.(\d+|[*xX]))?(?:\.(?:\d+|[*xX]))?(?:[-+].*)?\s*"
)


def legacy_version_error(version: str) -> str:
    """The 400 text for a version other than exactly "0.2"/"0.3" (engine-spec §2.9.2 and its quirk)."""
    match = _REQUIREMENT.fullmatch(version)
    if match is None or any(part.isdigit() and int(part) >= 2**64 for part in (match[1], match[2] or "")):
        return VERSION_REQUIRED
    major = int(match[1])
    minor = int(match[2]) if match[2] and match[2].isdigit() else None
    if major > 0 or (minor is not None and minor > 5):
        return VERSION_TOO_NEW
    return VERSION_TOO_OLD


class CsiRoutes:
    def __init__(self, csi: Csi) -> None:
        self.csi = csi
        self.functions: dict[str, Function] = {
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

    def routes(self) -> list[Route]:
        return [
            Route("/csi", self.legacy, methods=["POST"]),
            Route("/csi/v1/{function}", self.v1, methods=["POST"]),
            Route("/csi/v2/{function}", self.v2, methods=["POST"]),
        ]

    async def v1(self, request: Request) -> Response:
        return await self._versioned(request, 1)

    async def v2(self, request: Request) -> Response:
        return await self._versioned(request, 2)

    async def _versioned(self, request: Request, version: int) -> Response:
        function = self.functions.get(request.path_params["function"])
        if function is None:
            return Response(status_code=404)
        token = bearer_token(request)
        body = await json_value(request)
        try:
            parsed = function.parse(body, version)
        except ValueError as e:
            return text(SHAPE_PREFIX + str(e), 422)
        except CsiError as e:
            return text(FAILED_PREFIX + str(e), 500)
        _count(request.path_params["function"], parsed)
        try:
            result = await function.run(parsed, caller_context(request, token), version)
        except CsiRefusal as e:
            return refused(e)
        except CsiError as e:
            return text(FAILED_PREFIX + str(e), 500)
        return result if isinstance(result, Response) else json_response(result)

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

    async def legacy(self, request: Request) -> Response:
        token = bearer_token(request)
        body = await json_value(request)
        if not isinstance(body, dict):
            return text(
                SHAPE_PREFIX + "invalid type: expected internally tagged enum VersionedCsiRequest", 422
            )
        version = body.get("version")
        if version is None:
            return json_response(VERSION_REQUIRED, 400)
        if not isinstance(version, str):
            return text(SHAPE_PREFIX + "invalid type: expected a string for `version`", 422)
        if version not in ("0.2", "0.3"):
            return json_response(legacy_version_error(version), 400)
        function = body.get("function")
        name = function if isinstance(function, str) else "specified"
        legacy = (LEGACY_0_2 if version == "0.2" else LEGACY_0_3).get(name)
        if legacy is None:
            return json_response(unsupported_function(name), 400)
        try:
            parsed = legacy.parse(body)
        except (ValueError, CsiError):
            return json_response(unsupported_function(name), 400)
        _count(name, parsed)
        try:
            result = await legacy.run(self, parsed, caller_context(request, token))
        except CsiRefusal as e:
            return refused(e, as_json=True)
        except CsiError as e:
            message = EXPLAIN_PREFIX + str(e) if name == "explain" else str(e)
            return json_response(message, 500)
        return json_response(result)


def _count(function: str, parsed: Any) -> None:
    """`kernel_csi_requests_total`, as for skills' calls: a batch counts as its size."""
    requests = parsed[1] if isinstance(parsed, tuple) else parsed  # invoke_tool: (namespace, requests)
    telemetry.current().metrics.csi_request(function, len(requests) if isinstance(requests, list) else 1)


@dataclass(frozen=True)
class Legacy:
    parse: Callable[[dict[str, Any]], Any]
    run: Callable[[CsiRoutes, Any, CsiContext], Awaitable[Any]]


def _requests(parse_one: Callable[[Any], Any]) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda body: [parse_one(item) for item in js.Fields(body, "map").items("requests")]


def _legacy_message(response: ChatResponse) -> dict[str, Any]:
    return {"role": "assistant", "content": response.message.content}


def _short(completion: Any) -> dict[str, Any]:
    return {"text": completion.text, "finish_reason": completion.finish_reason.value}


def _search_result_v0_2(result: SearchResult) -> dict[str, Any]:
    full = docs_json.search_result_to_json(result)
    return {key: full[key] for key in ("document_path", "content", "score")}


async def _complete_0_2(routes: CsiRoutes, requests: list[Any], ctx: CsiContext) -> Any:
    return [_short(c) for c in await routes.csi.inference.complete(requests, ctx)]


async def _chat_0_2(routes: CsiRoutes, request: Any, ctx: CsiContext) -> Any:
    (response,) = await routes.csi.inference.chat([request], ctx)
    return js.chat_response_to_json(response, _legacy_message(response), legacy=True)


async def _chat_0_3(routes: CsiRoutes, requests: list[Any], ctx: CsiContext) -> Any:
    responses = await routes.csi.inference.chat(requests, ctx)
    return [js.chat_response_to_json(r, _legacy_message(r)) for r in responses]


def _first(run: Callable[[CsiRoutes, Any, CsiContext], Awaitable[Any]]) -> Any:
    async def single(routes: CsiRoutes, request: Any, ctx: CsiContext) -> Any:
        return (await run(routes, [request], ctx))[0]

    return single


async def _chunk(routes: CsiRoutes, requests: list[Any], ctx: CsiContext) -> Any:
    return await routes.csi.chunking.chunk(requests, ctx)


async def _select_language(routes: CsiRoutes, requests: list[Any], ctx: CsiContext) -> Any:
    return await routes.csi.language.select_language(requests)


async def _search_0_2(routes: CsiRoutes, request: Any, ctx: CsiContext) -> Any:
    (results,) = await routes.csi.documents.search([request], ctx)
    return [_search_result_v0_2(r) for r in results]


async def _documents(routes: CsiRoutes, paths: list[Any], ctx: CsiContext) -> Any:
    return docs_json.documents_to_json(await routes.csi.documents.documents(paths, ctx))


async def _metadata(routes: CsiRoutes, paths: list[Any], ctx: CsiContext) -> Any:
    return await routes.csi.documents.document_metadata(paths, ctx)


def _v1(name: str) -> Callable[[CsiRoutes, Any, CsiContext], Awaitable[Any]]:
    """Runs the v1 function `name` (legacy 0.3 answers the v1 shapes)."""

    async def run(routes: CsiRoutes, parsed: Any, ctx: CsiContext) -> Any:
        return await routes.functions[name].run(parsed, ctx, 1)

    return run


def _legacy_search(body: dict[str, Any]) -> Any:
    return docs_json.search_request_from_json({**body, "filters": []})


LEGACY_0_2: dict[str, Legacy] = {
    "complete": Legacy(lambda b: js.completion_request_from_json(b, "0.2"), _first(_complete_0_2)),
    "complete_all": Legacy(_requests(lambda r: js.completion_request_from_json(r, "0.2")), _complete_0_2),
    "chat": Legacy(lambda b: js.chat_request_from_json(b, full=False), _chat_0_2),
    "chunk": Legacy(lambda b: js.chunk_request_from_json(b, overlap=False), _first(_chunk)),
    "select_language": Legacy(js.select_language_from_json, _first(_select_language)),
    "search": Legacy(_legacy_search, _search_0_2),
    "documents": Legacy(_requests(docs_json.document_path_from_json), _documents),
    "document_metadata": Legacy(
        lambda b: docs_json.document_path_from_json(b.get("document_path")), _first(_metadata)
    ),
}

LEGACY_0_3: dict[str, Legacy] = {
    "complete": Legacy(_requests(lambda r: js.completion_request_from_json(r, "0.3")), _v1("complete")),
    "chat": Legacy(_requests(lambda r: js.chat_request_from_json(r, full=False)), _chat_0_3),
    "explain": Legacy(_requests(js.explanation_request_from_json), _v1("explain")),
    "chunk": Legacy(_requests(js.chunk_request_from_json), _v1("chunk")),
    "chunk_with_offsets": Legacy(
        _requests(lambda r: js.chunk_request_from_json(r, offsets=True)), _v1("chunk_with_offsets")
    ),
    "select_language": Legacy(_requests(js.select_language_from_json), _v1("select_language")),
    "search": Legacy(_requests(docs_json.search_request_from_json), _v1("search")),
    "documents": Legacy(_requests(docs_json.document_path_from_json), _v1("documents")),
    "document_metadata": Legacy(_requests(docs_json.document_path_from_json), _v1("document_metadata")),
}
