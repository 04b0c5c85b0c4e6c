"""Authentication as PhariaEngine does it (engine-spec §7), as route-level ASGI middleware.

With `AUTHORIZATION_URL` set, every request that reaches an authenticated route (`/v1/*`, `/csi*`,
`/cached_skills*`) must carry `Authorization: Bearer <token>`; the token is checked with
`POST {AUTHORIZATION_URL}/check_user` for the `KernelAccess` permission. Public routes (`/`, `/health`,
`/openapi.json`, docs), unknown paths and wrong methods never check. A present header that is not a bearer
token is rejected with 400 on authenticated routes even when authentication is off.

Unlike PhariaEngine, successful checks are remembered for `AUTHORIZATION_CACHE_TTL` (default 5 s, 0 turns
it off) keyed by a SHA-256 of the token, and concurrent checks of one token share one IAM call, so a burst
does not hammer the IAM. Rejections are never cached. The token itself is never logged or echoed.

`protect()` wraps every authenticated route once, when the app is built: the router matches a request
once, answers 404/405 itself, and only a matched route runs `Authentication`, which parses the header
once and leaves the token on `request.state.bearer_token` for the route.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import httpx
from cachetools import TTLCache
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from skill_engine import telemetry
from skill_engine.api.errors import HttpError
from skill_engine.governance import audit
from skill_engine.single_flight import SingleFlight
from skill_engine.telemetry import outbound_headers

log = logging.getLogger("skill_engine.middleware.auth")

PERMISSIONS = [{"permission": "KernelAccess"}]
AUTHENTICATED_PREFIXES = ("/v1/", "/csi", "/cached_skills")
OWN_AUTH_PREFIXES = ("/v1/documents/",)
"""The embedded document index's management API checks its own admin token (docs/documents.md)."""
MISSING_TEXT = "Bearer token expected"
INVALID_TEXT = "Bearer token invalid"
MALFORMED_TEXT = "Header of type `authorization` was invalid"
# PhariaEngine's text, including its newline followed by eight spaces (engine-spec App. B, quirk 12).
UNAVAILABLE_TEXT = (
    "Failed to check token validity against the authorization service. You should try again later,\n"
    "        if the problem persists you may want to contact the operators."
)
IAM_TIMEOUT = 10.0
"""Default of AUTHORIZATION_TIMEOUT. PhariaEngine has none; a hung IAM must not hang requests (⇒ 500)."""
CACHE_ENTRIES = 10_000


def token_from_header(header: str | None) -> str | None:
    """The bearer token of an `Authorization` value; `None` without header, HttpError(400) if malformed."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise HttpError(400, MALFORMED_TEXT)
    return token


def is_authenticated_path(path: str) -> bool:
    return path.startswith(AUTHENTICATED_PREFIXES) and not path.startswith(OWN_AUTH_PREFIXES)


Identity = tuple[str | None, str | None]
"""The caller as the IAM answered: (`sub`, `email`), for the audit trail."""


class Authenticator:
    """Checks tokens against the IAM, remembering successful checks for a short time."""

    def __init__(self, url: str, cache_ttl: float = 5.0, timeout: float = IAM_TIMEOUT) -> None:
        self.url = url.rstrip("/") + "/check_user"
        self.cache_ttl = cache_ttl
        self._client = httpx.AsyncClient(timeout=timeout)
        self._granted: TTLCache[str, Identity] | None = (
            TTLCache(CACHE_ENTRIES, cache_ttl) if cache_ttl > 0 else None
        )
        self._checking: SingleFlight[str, Identity] = SingleFlight()
        self.iam_calls = 0

    async def check(self, token: str) -> Identity:
        """The caller if the token grants `KernelAccess`; raises HttpError(403 or 500) otherwise."""
        key = hashlib.sha256(token.encode()).hexdigest()
        if self._granted is not None and (identity := self._granted.get(key)) is not None:
            return identity
        return await self._checking.run(key, lambda: self._check_and_remember(key, token))

    async def _check_and_remember(self, key: str, token: str) -> Identity:
        identity = await self._ask_iam(token)  # HttpError (rejection, IAM down) is not remembered
        if self._granted is not None:
            self._granted[key] = identity
        return identity

    async def _ask_iam(self, token: str) -> Identity:
        self.iam_calls += 1
        try:
            response = await self._client.post(
                self.url,
                json={"permissions": PERMISSIONS},
                headers=dict(outbound_headers({"authorization": f"Bearer {token}"})),  # + trace headers
            )
        except httpx.HTTPError as e:
            log.warning("authorization service unreachable: %s", type(e).__name__)
            raise HttpError(500, UNAVAILABLE_TEXT) from None
        if response.status_code == 401:
            raise HttpError(403, INVALID_TEXT)
        if not response.is_success:
            log.warning("authorization service answered %d", response.status_code)
            raise HttpError(500, UNAVAILABLE_TEXT)
        try:
            answer = response.json()
            granted = answer.get("permissions")
        except (ValueError, AttributeError):
            log.warning("authorization service answered with an unexpected body")
            raise HttpError(500, UNAVAILABLE_TEXT) from None
        if granted != PERMISSIONS:
            raise HttpError(403, INVALID_TEXT)
        sub, email = answer.get("sub"), answer.get("email")
        return (sub if isinstance(sub, str) else None, email if isinstance(email, str) else None)

    async def aclose(self) -> None:
        await self._client.aclose()


class Authentication:
    """Wraps one route: parses the bearer token onto the request's state, then checks it if enabled."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator | None) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = token_from_header(Headers(scope=scope).get("authorization"))
        scope.setdefault("state", {})["bearer_token"] = token
        if self.authenticator is not None:
            if token is None:
                raise HttpError(401, MISSING_TEXT)
            with telemetry.span("check_permissions"):  # engine-spec §6.1
                audit.identify(*await self.authenticator.check(token))
        await self.app(scope, receive, send)


def protect(routes: Sequence[BaseRoute], authenticator: Authenticator | None) -> list[BaseRoute]:
    """The routes, those under the authenticated prefixes wrapped in `Authentication`."""
    for route in routes:
        if isinstance(route, Route | Mount) and is_authenticated_path(route.path):
            route.app = Authentication(route.app, authenticator)
    return list(routes)
