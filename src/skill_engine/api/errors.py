"""The one HTTP error type and the Starlette exception handlers that turn errors into responses.

Routes and middleware raise `HttpError(status, text)`; the skill store and the runtime raise the execution
errors of `skill_engine.errors`. Both become `text/plain` bodies with PhariaEngine's exact texts. Unknown
paths (404) and wrong methods (405) answer with an empty body, as axum does.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler

from skill_engine.errors import ExecutionError
from skill_engine.governance import audit

TEXT = "text/plain; charset=utf-8"


class HttpError(Exception):
    """A request the engine refuses: `text` is the exact body, `headers` go with the response."""

    def __init__(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return Response(self.text, status_code=self.status, headers=self.headers, media_type=TEXT)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HttpError)
    return exc.response()


async def execution_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ExecutionError)
    audit.failed(getattr(exc, "kind", exc.metric_status))  # the error kind of the audit record
    response = Response(exc.message, status_code=exc.status, media_type=TEXT)
    response.headers.update(getattr(exc, "headers", {}))  # e.g. `retry-after` of an overload 429
    return response


async def empty(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return Response(status_code=status, headers=headers)


EXCEPTION_HANDLERS: Mapping[object, ExceptionHandler] = {
    HttpError: http_error,
    ExecutionError: execution_error,
    404: empty,
    405: empty,
}
