"""Request parsing shared by all routes, reproducing axum's rejection texts (engine-spec §2.1)."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from skill_engine.api.errors import HttpError
from skill_engine.config import invalid_namespace_text, is_valid_namespace

__all__ = ["HttpError", "bearer_token", "json_body", "json_response", "json_value", "namespace_param", "text"]

MAX_BODY = 50 * 1024 * 1024
_LARGE = 1024 * 1024
"""Bodies above this are parsed off the event loop so big inputs never stall other requests."""


def text(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="text/plain; charset=utf-8")


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json")


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


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


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise HttpError(413, "Failed to buffer the request body: length limit exceeded")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HttpError(413, "Failed to buffer the request body: length limit exceeded")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> bytes:
    """The body as compact JSON bytes, as the skill receives it."""
    raw = await _json_bytes(request)
    if len(raw) > _LARGE:
        return await run_in_threadpool(_reserialize, raw)
    return _reserialize(raw)


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


def _reserialize(raw: bytes) -> bytes:
    return dumps(_parse(raw))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise HttpError(400, "Failed to parse the request body as JSON: " + serde_style(e)) from None
    except (UnicodeDecodeError, ValueError) as e:  # NaN/Infinity are not JSON
        raise HttpError(400, f"Failed to parse the request body as JSON: {e}") from None
