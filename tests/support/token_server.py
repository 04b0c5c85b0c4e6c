"""A registry token service (the Docker token flow used by ghcr.io, GitLab, Harbor): checks HTTP Basic
credentials and answers a JWT granting the requested scope, signed with the test CA's key and carrying the
CA certificate in `x5c`, which docker-registry verifies against its `rootcertbundle`."""

from __future__ import annotations

import base64
import time
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.registry import TOKEN_ISSUER, TOKEN_SERVICE, Tls


class TokenServer:
    def __init__(self, ca: Tls, users: dict[str, str]) -> None:
        self.users = users
        self.ca = ca
        self.key = ca.ca_key.read_bytes()
        certificate = x509.load_pem_x509_certificate(ca.ca.read_bytes())
        self.x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
        self.scopes: list[str] = []
        self.authorizations: list[str | None] = []
        """The Authorization header of every request (None when absent)."""
        self.app = Starlette(routes=[Route("/token", self.token, methods=["GET"])])

    async def token(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("authorization"))
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        user, _, password = base64.b64decode(encoded or "Og==").decode().partition(":")
        if scheme.lower() != "basic" or self.users.get(user) != password:
            return Response(status_code=401)
        access = []
        for scope in request.query_params.getlist("scope"):
            self.scopes.append(scope)
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            # Users may push everywhere: grant it even when only `pull` was asked, because oras-py keeps
            # the token of its first (pull) challenge for the push that follows.
            access.append(
                {"type": kind, "name": name, "actions": sorted({*actions.split(","), "pull", "push"})}
            )
        now = int(time.time())
        claims = {
            "iss": TOKEN_ISSUER,
            "sub": user,
            "aud": TOKEN_SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": [self.x5c]})
        return JSONResponse({"token": token, "access_token": token, "expires_in": 300})
