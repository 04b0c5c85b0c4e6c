"""CSI over HTTP (engine-spec §2.9): `POST /csi/v1/{function}`, `/csi/v2/{function}` and the legacy
`POST /csi` envelope. The SDK's `DevCsi` uses `/csi/v1`.

Calls run with the caller's bearer token exactly as a skill's would. Errors: a body of the wrong shape is
422, a failing driver or an unconvertible request is 500 `Something went wrong: <error>` (text); streams
report failures after the start as an `error` event. The legacy envelope answers JSON strings.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from skill_engine import telemetry
from skill_engine.api.csi_functions import CsiFunctions
from skill_engine.api.csi_legacy import (
    LEGACY_0_2,
    LEGACY_0_3,
    VERSION_REQUIRED,
    legacy_version_error,
    unsupported_function,
)
from skill_engine.api.http import bearer_token, json_response, json_value, text
from skill_engine.csi import Csi, CsiContext
from skill_engine.csi.errors import CsiError, CsiRefusal
from skill_engine.governance import audit

CALLER = "csi-over-http"
NAMESPACE_HEADER = "x-namespace"
"""Optional: the namespace a CSI over HTTP caller acts for. Its policy narrows the engine's baseline,
never widens it: the caller chooses it (docs/governance.md, decision 0011)."""
SHAPE_PREFIX = "Failed to deserialize the JSON body into the target type: "
FAILED_PREFIX = "Something went wrong: "
EXPLAIN_PREFIX = "We got an error from our inference driver:\n\n"


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


class CsiRoutes:
    def __init__(self, csi: Csi) -> None:
        self.csi = csi
        self.functions = CsiFunctions(csi)

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
        function = self.functions.by_name.get(request.path_params["function"])
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
            result = await legacy.run(self.functions, parsed, caller_context(request, token))
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
