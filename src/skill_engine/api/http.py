"""Request parsing shared by all routes, reproducing axum's rejection texts (engine-spec §2.1)."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from skill_engine.api.errors import HttpError
from skill_engine.api.json_worker import JsonProblem, compact_json, dumps
from skill_engine.config import invalid_namespace_text, is_valid_namespace

__all__ = [
    "HttpError",
    "bearer_token",
    "json_body",
    "json_response",
    "json_value",
    "namespace_param",
    "read_body",
    "text",
]

MAX_BODY = 50 * 1024 * 1024
_LARGE = 1024 * 1024
"""Bodies above this are parsed off the event loop so big inputs never stall other requests."""


def text(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/plain; charset=utf-8")


def json_response(value: Any, status: int = 200) -> Response:
    return json_bytes_response(dumps(value), status)


def json_bytes_response(body: bytes, status: int = 200) -> Response:
    """Serialized JSON; large bodies go out in slices so compression and writes share the event loop."""
    if len(body) > _LARGE:
        return _SlicedResponse(body, status_code=status, media_type="application/json")
    return Response(body, status_code=status, media_type="application/json")


class _SlicedResponse(Response):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        view = memoryview(self.body)
        for start in range(0, len(view), _LARGE):
            end = start + _LARGE
            await send(
                {"type": "http.response.body", "body": bytes(view[start:end]), "more_body": end < len(view)}
            )


def namespace_param(request: Request) -> str:
    namespace: str = request.path_params["namespace"]
    if not is_valid_namespace(namespace):
        raise HttpError(400, "Invalid URL: " + invalid_namespace_text(namespace))
    return namespace


def bearer_token(request: Request) -> str | None:
    """The caller's token, parsed once by `middleware.auth.Authentication` for every authenticated route."""
    token: str | None = getattr(request.state, "bearer_token", None)
    return token


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def serde_style(error: json.JSONDecodeError) -> str:
    return f"{error.msg} at line {error.lineno} column {error.colno}"


TOO_LARGE = "Failed to buffer the request body: length limit exceeded"


async def read_body(request: Request, limit: int = MAX_BODY, too_large: str = TOO_LARGE) -> bytes:
    """The body, counted while it streams in: 413 with `too_large` as soon as it passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, too_large)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> bytes:
    """The body as compact JSON bytes, as the skill receives it (large bodies in a helper process)."""
    raw = await _json_bytes(request)
    try:
        return await compact_json(raw, strict=True)
    except JsonProblem as e:
        raise HttpError(400, f"Failed to parse the request body as JSON: {e.text}") from None


async def json_value(request: Request) -> Any:
    """The body parsed as JSON, with axum's rejections for a wrong content type or malformed JSON."""
    raw = await _json_bytes(request)
    if len(raw) > _LARGE:
        return await run_in_threadpool(_parse, raw)
    return _parse(raw)


async def _json_bytes(request: Request) -> bytes:
    if not _is_json(request.headers.get("content-type")):
        raise HttpError(415, "Expected request with `Content-Type: application/json`")
    return await read_body(request)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise HttpError(400, "Failed to parse the request body as JSON: " + serde_style(e)) from None
    except (UnicodeDecodeError, ValueError) as e:  # NaN/Infinity are not JSON
        raise HttpError(400, f"Failed to parse the request body as JSON: {e}") from None
