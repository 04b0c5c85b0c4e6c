"""The legacy `POST /csi` envelope of the 0.2 and 0.3 SDKs (engine-spec §2.9.2): its version texts and
one table of functions per version; 0.3 answers the v1 shapes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from skill_engine.api import csi_documents as docs_json
from skill_engine.api import csi_json as js
from skill_engine.api.csi_functions import CsiFunctions
from skill_engine.csi import CsiContext
from skill_engine.csi.types import ChatResponse, SearchResult

VERSION_REQUIRED = "A valid CSI version is required. Try upgrading your SDK."
VERSION_TOO_NEW = (
    "The specified CSI version is not supported by this Kernel installation yet. Try updating your Kernel "
    "version or downgrading your SDK."
)
VERSION_TOO_OLD = "This CSI version is no longer supported by the Kernel. Try upgrading your SDK."


def unsupported_function(function: str) -> str:
    return (
        f"The CSI function {function} is not supported by this Kernel installation yet. Try updating your "
        "Kernel version or downgrading your SDK."
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


@dataclass(frozen=True)
class Legacy:
    parse: Callable[[dict[str, Any]], Any]
    run: Callable[[CsiFunctions, Any, CsiContext], Awaitable[Any]]


def _requests(parse_one: Callable[[Any], Any]) -> Callable[[dict[str, Any]], list[Any]]:
    return lambda body: [parse_one(item) for item in js.Fields(body, "map").items("requests")]


def _legacy_message(response: ChatResponse) -> dict[str, Any]:
    return {"role": "assistant", "content": response.message.content}


def _short(completion: Any) -> dict[str, Any]:
    return {"text": completion.text, "finish_reason": completion.finish_reason.value}


def _search_result_v0_2(result: SearchResult) -> dict[str, Any]:
    full = docs_json.search_result_to_json(result)
    return {key: full[key] for key in ("document_path", "content", "score")}


async def _complete_0_2(functions: CsiFunctions, requests: list[Any], ctx: CsiContext) -> Any:
    return [_short(c) for c in await functions.csi.inference.complete(requests, ctx)]


async def _chat_0_2(functions: CsiFunctions, request: Any, ctx: CsiContext) -> Any:
    (response,) = await functions.csi.inference.chat([request], ctx)
    return js.chat_response_to_json(response, _legacy_message(response), legacy=True)


async def _chat_0_3(functions: CsiFunctions, requests: list[Any], ctx: CsiContext) -> Any:
    responses = await functions.csi.inference.chat(requests, ctx)
    return [js.chat_response_to_json(r, _legacy_message(r)) for r in responses]


def _first(run: Callable[[CsiFunctions, Any, CsiContext], Awaitable[Any]]) -> Any:
    async def single(functions: CsiFunctions, request: Any, ctx: CsiContext) -> Any:
        return (await run(functions, [request], ctx))[0]

    return single


async def _chunk(functions: CsiFunctions, requests: list[Any], ctx: CsiContext) -> Any:
    return await functions.csi.chunking.chunk(requests, ctx)


async def _select_language(functions: CsiFunctions, requests: list[Any], ctx: CsiContext) -> Any:
    return await functions.csi.language.select_language(requests)


async def _search_0_2(functions: CsiFunctions, request: Any, ctx: CsiContext) -> Any:
    (results,) = await functions.csi.documents.search([request], ctx)
    return [_search_result_v0_2(r) for r in results]


async def _documents(functions: CsiFunctions, paths: list[Any], ctx: CsiContext) -> Any:
    return docs_json.documents_to_json(await functions.csi.documents.documents(paths, ctx))


async def _metadata(functions: CsiFunctions, paths: list[Any], ctx: CsiContext) -> Any:
    return await functions.csi.documents.document_metadata(paths, ctx)


def _v1(name: str) -> Callable[[CsiFunctions, Any, CsiContext], Awaitable[Any]]:
    """Runs the v1 function `name` (legacy 0.3 answers the v1 shapes)."""

    async def run(functions: CsiFunctions, parsed: Any, ctx: CsiContext) -> Any:
        return await functions.by_name[name].run(parsed, ctx, 1)

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
