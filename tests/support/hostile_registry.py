"""Loopback servers that behave as badly as a registry or a config host on the network may: a registry
that redirects layers to another origin and serves oversized manifests and layers, a blob host and a
config host that record the `Authorization` headers they receive, and a redirecting namespace-file host.

`HostileRegistry` speaks just enough of the distribution API (HTTP Basic challenge, manifests, blobs):
- `<repo>/probe`: a valid Wasm artifact whose layer is answered with a 307 to `blob_origin`;
- `<repo>/huge`: a layer announced with `Content-Length: 10 GB` (it would stream zeros forever);
- `<repo>/endless`: a layer streamed without a length, forever; `sent` counts the bytes it got out;
- `<repo>/bigmanifest`: a manifest of 5 MiB.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CHUNK = b"\0" * 65536
TEN_GB = 10 * 1024**3


def manifest(layer_digest: str, size: int, padding: int = 0) -> bytes:
    config = b"{}"
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.wasm.config.v0+json",
            "digest": f"sha256:{hashlib.sha256(config).hexdigest()}",
            "size": len(config),
        },
        "layers": [{"mediaType": "application/wasm", "digest": layer_digest, "size": size}],
    }
    if padding:
        document["annotations"] = {"padding": "x" * padding}
    return json.dumps(document).encode()


class Recorder:
    """Serves `body` at every GET path and records the Authorization header of each request."""

    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.authorizations: list[tuple[str, str | None]] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.serve, methods=["GET"])])

    async def serve(self, request: Request) -> Response:
        self.authorizations.append((request.url.path, request.headers.get("authorization")))
        return Response(self.body, media_type="application/octet-stream")


class Redirector:
    """Answers every GET with a 307 to the same path at `target`."""

    def __init__(self) -> None:
        self.target = ""
        self.app = Starlette(routes=[Route("/{path:path}", self.serve, methods=["GET"])])

    async def serve(self, request: Request) -> Response:
        return RedirectResponse(f"{self.target}{request.url.path}", status_code=307)


class HostileRegistry:
    def __init__(self, wasm: bytes, user: str, password: str) -> None:
        self.wasm = wasm
        self.digest = f"sha256:{hashlib.sha256(wasm).hexdigest()}"
        self.blob_origin = ""
        self.sent = 0
        self.requests: list[str] = []
        self.expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.app = Starlette(
            routes=[
                Route("/v2/", self.base, methods=["GET"]),
                Route("/v2/{repo:path}/manifests/{reference}", self.manifest, methods=["GET", "HEAD"]),
                Route("/v2/{repo:path}/blobs/{digest}", self.blob, methods=["GET"]),
            ]
        )

    def _denied(self, request: Request) -> Response | None:
        self.requests.append(f"{request.method} {request.url.path}")
        if request.headers.get("authorization") != self.expected:
            return Response(status_code=401, headers={"www-authenticate": 'Basic realm="hostile"'})
        return None

    async def base(self, request: Request) -> Response:
        return self._denied(request) or Response("{}", media_type="application/json")

    async def manifest(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        name = request.path_params["repo"].rpartition("/")[2]
        if name == "probe":
            body = manifest(self.digest, len(self.wasm))
        elif name in ("huge", "endless"):
            body = manifest(f"sha256:{'a' * 64 if name == 'huge' else 'b' * 64}", TEN_GB)
        elif name == "bigmanifest":
            body = manifest(self.digest, len(self.wasm), padding=5 * 1024 * 1024)
        else:
            return Response(status_code=404)
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        headers = {"docker-content-digest": digest}
        return Response(body, media_type=OCI_MANIFEST, headers=headers)

    async def blob(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        name = request.path_params["repo"].rpartition("/")[2]
        if name == "probe":
            return RedirectResponse(f"{self.blob_origin}/blobs/{self.digest}", status_code=307)
        headers = {"content-length": str(TEN_GB)} if name == "huge" else None
        return StreamingResponse(self._zeros(), media_type="application/octet-stream", headers=headers)

    async def _zeros(self) -> AsyncIterator[bytes]:
        while True:
            self.sent += len(CHUNK)
            yield CHUNK
            await asyncio.sleep(0)
