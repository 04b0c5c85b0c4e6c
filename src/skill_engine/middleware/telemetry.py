"""ASGI middleware: per request a server span, the HTTP metrics and one log line.

Work a route defers until its response has been sent (telemetry/after_response.py) runs here, after the
application returned and before the request's own span ends.

The span continues an incoming `traceparent` and the response names it in its own `traceparent`. Span name
and the `path` label are the matched route template (`POST /v1/skills/{namespace}/{name}/run`); requests
that match no route or not its method (404/405) are not counted, as in PhariaEngine. Streaming responses
are measured until their last byte.
"""

from __future__ import annotations

import logging
import time
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skill_engine import telemetry
from skill_engine.telemetry import Telemetry, after_response

log = logging.getLogger("skill_engine.http")

QUIET_PATHS = frozenset({"/health", "/ready"})  # probes
"""Probed every few seconds by orchestrators: their request lines are logged at debug level."""


def _route(scope: Scope) -> tuple[str | None, bool]:
    """(route template, whether method and path both matched), as the router matched them.

    The router leaves the route it handed the request to in `scope["route"]` (Starlette ≥ 0.33), a path-only
    match (405) included. A request answered before routing (a CORS preflight, a refused request body) has
    none: only then is the route looked up here, the way the router would have.
    """
    route = scope.get("route")
    if route is None:
        route = _match(scope)
    if not isinstance(route, Route):
        return None, False
    return route.path, not route.methods or scope["method"] in route.methods


def _match(scope: Scope) -> BaseRoute | None:
    partial: BaseRoute | None = None
    for route in getattr(scope.get("app"), "routes", ()):
        if not isinstance(route, Route):
            continue
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        token = telemetry.activate(self.telemetry)
        method: str = scope["method"]
        status = 500
        span, context_token, extra_headers = self._start_span(scope, method)
        deferred, deferred_token = after_response.begin()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if extra_headers:
                    message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as e:
            if span is not None:
                span.record_exception(e)
            raise
        finally:
            elapsed = time.perf_counter() - started
            after_response.end(deferred, deferred_token)  # what the route left for after its response
            self._observe(scope, method, status, elapsed, span)
            if context_token is not None:
                otel_context.detach(context_token)
            telemetry.deactivate(token)

    def _start_span(
        self, scope: Scope, method: str
    ) -> tuple[Span | None, Token[Context] | None, list[tuple[bytes, bytes]]]:
        """The server span (continuing an incoming `traceparent`), made current, and the response headers
        that name it; nothing without tracing."""
        tracing = self.telemetry.tracing
        if tracing.tracer is None:
            return None, None, []
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = tracing.extract(headers)
        span = tracing.tracer.start_span(
            method,  # named after the route once the router has matched it
            context=parent,
            kind=SpanKind.SERVER,
            attributes=_request_attributes(scope, method, headers),
        )
        ctx = set_span_in_context(span, parent)
        extra_headers = [(k.encode(), v.encode()) for k, v in tracing.response_headers(ctx).items()]
        return span, otel_context.attach(ctx), extra_headers

    def _observe(self, scope: Scope, method: str, status: int, elapsed: float, span: Span | None) -> None:
        """Ends the span, counts a request that matched a route and logs the request line."""
        template, matched = _route(scope)
        if span is not None:
            if template is not None:
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        if matched and template is not None:
            metrics = self.telemetry.metrics
            labels = (method, template, str(status))
            metrics.http_requests_child(*labels).inc()
            metrics.http_duration_child(*labels).observe(elapsed)
        path: str = scope["path"]
        log.log(
            logging.DEBUG if path in QUIET_PATHS else logging.INFO,
            "%s %s %d %.1fms",
            method,
            path,
            status,
            elapsed * 1000,
            extra={"method": method, "path": path, "status": status, "duration_ms": round(elapsed * 1000, 3)},
        )


def _request_attributes(scope: Scope, method: str, headers: dict[str, str]) -> Any:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    server = scope.get("server")
    if server:
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    agent = headers.get("user-agent")
    if agent:
        attributes["user_agent.original"] = agent
    return attributes
