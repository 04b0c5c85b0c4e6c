"""Pulls skills from an OCI registry through the distribution API (engine-spec §5.4, sdk-spec §1.5-1.6).

A skill `<name>:<tag>` lives at `<registry>/<base-repository>/<name>:<tag>` as a Wasm OCI artifact: an OCI
image manifest whose config is `application/vnd.wasm.config.v0+json` and whose single layer is the
`application/wasm` component, as `pharia-skill publish` (and `oras push`) writes it. The digest of a version
is the manifest digest, so re-pointing a tag is noticed without downloading anything.

HTTPS by default, trusting the system store and `SSL_CERT_FILE`; a registry written `http://host:port`
is spoken to in plain HTTP (local development only). Credentials answer the registry's challenge: HTTP
Basic directly, or exchanged for a Bearer token at the realm the registry names (the token flow of
ghcr.io, GitLab, Harbor, Docker Hub).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import httpx

from skill_engine.skills.registry import Pulled, RegistryError
from skill_engine.skills.tls import trust_store

log = logging.getLogger("skill_engine.oci")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WASM_CONFIG = "application/vnd.wasm.config.v0+json"
WASM_LAYER = "application/wasm"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class _NotFound(Exception):
    pass


def split_registry(registry: str) -> tuple[str, str]:
    """(`https://host:port` base URL, `host:port`) from `host:port`, `https://host` or `http://host`."""
    registry = registry.strip().rstrip("/")
    for scheme in ("http://", "https://"):
        if registry.lower().startswith(scheme):
            host = registry[len(scheme) :]
            return f"{scheme}{host}", host
    return f"https://{registry}", registry


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` → ("bearer", {realm, service}); quoted values may hold commas."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    while rest:
        key, _, rest = rest.strip().lstrip(",").strip().partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
        else:
            value, _, rest = rest.partition(",")
        if key:
            params[key.strip().lower()] = value.strip()
    return scheme.lower(), params


class OciRegistry:
    def __init__(
        self,
        registry: str,
        base_repository: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.base_url, self.host = split_registry(registry)
        self.base_repository = (base_repository or "").strip("/")
        self._credentials = (user, password) if user is not None and password is not None else None
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"OciRegistry({self.base_url!r}, {self.base_repository!r})"

    def repository(self, name: str) -> str:
        return f"{self.base_repository}/{name}" if self.base_repository else name

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(verify=trust_store(), timeout=TIMEOUT, follow_redirects=True)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    # -- Registry protocol --------------------------------------------------------------------------

    async def load(self, name: str, tag: str) -> Pulled | None:
        repository = self.repository(name)
        try:
            raw, digest = await self._manifest(repository, tag)
            layer = _wasm_layer(raw)
            wasm = await self._blob(repository, layer)
        except _NotFound:
            return None
        except (RegistryError, httpx.HTTPError, ValueError) as e:
            raise RegistryError(f"Error retrieving skill from registry: {_describe(e)}") from None
        log.info("pulled %s/%s:%s (%s, %d bytes)", self.host, repository, tag, digest, len(wasm))
        return Pulled(wasm, digest)

    async def digest(self, name: str, tag: str) -> str | None:
        repository = self.repository(name)
        try:
            response = await self._send("HEAD", f"/v2/{repository}/manifests/{tag}", repository)
            if response.status_code == 404:
                return None
            _check(response)
            digest = response.headers.get("docker-content-digest")
            if digest:
                return str(digest)
            _, digest = await self._manifest(repository, tag)
            return digest
        except _NotFound:
            return None
        except (RegistryError, httpx.HTTPError, ValueError) as e:
            raise RegistryError(f"Error retrieving digest from registry: {_describe(e)}") from None

    # -- distribution API ---------------------------------------------------------------------------

    async def _manifest(self, repository: str, tag: str) -> tuple[bytes, str]:
        response = await self._send("GET", f"/v2/{repository}/manifests/{tag}", repository)
        if response.status_code == 404:
            raise _NotFound()
        _check(response)
        raw = response.content
        digest = response.headers.get("docker-content-digest") or f"sha256:{hashlib.sha256(raw).hexdigest()}"
        return raw, str(digest)

    async def _blob(self, repository: str, digest: str) -> bytes:
        response = await self._send("GET", f"/v2/{repository}/blobs/{digest}", repository)
        _check(response)
        data = response.content
        algorithm, _, expected = digest.partition(":")
        if algorithm == "sha256" and hashlib.sha256(data).hexdigest() != expected:
            raise RegistryError(f"layer {digest} does not match its digest")
        return data

    async def _send(self, method: str, path: str, repository: str) -> httpx.Response:
        url = self.base_url + path
        headers = {"accept": OCI_MANIFEST} if "/manifests/" in path else {}
        token = self._tokens.get(repository)
        auth_headers = {"authorization": f"Bearer {token}"} if token else {}
        basic = self._credentials if self._basic and not token else None
        response = await self.client.request(method, url, headers={**headers, **auth_headers}, auth=basic)
        if response.status_code != 401:
            return response
        scheme, params = _challenge(response.headers.get("www-authenticate", ""))
        if scheme == "basic" and self._credentials is not None and basic is None:
            self._basic = True  # from now on sent up front, saving a round trip per request
            return await self.client.request(method, url, headers=headers, auth=self._credentials)
        if scheme == "bearer" and "realm" in params:
            token = await self._token(params, repository)
            self._tokens[repository] = token
            return await self.client.request(
                method, url, headers={**headers, "authorization": f"Bearer {token}"}
            )
        return response

    async def _token(self, challenge: dict[str, str], repository: str) -> str:
        query = {"scope": f"repository:{repository}:pull"}
        if "service" in challenge:
            query["service"] = challenge["service"]
        response = await self.client.get(challenge["realm"], params=query, auth=self._credentials)
        _check(response)
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str):
            raise RegistryError("the token service answered without a token")
        return token


def _wasm_layer(raw: bytes) -> str:
    """The digest of the component layer; the artifact must be the Wasm OCI layout."""
    manifest: Any = json.loads(raw)
    if not isinstance(manifest, dict):
        raise RegistryError("the manifest is not a JSON object")
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    if media_type != OCI_MANIFEST:
        raise RegistryError(f"unsupported manifest media type {media_type}, expected {OCI_MANIFEST}")
    config = manifest.get("config") or {}
    if config.get("mediaType") != WASM_CONFIG:
        raise RegistryError(f"config media type {config.get('mediaType')} is not {WASM_CONFIG}")
    layers = manifest.get("layers") or []
    if len(layers) != 1:
        raise RegistryError(f"a Wasm artifact has exactly one layer, this one has {len(layers)}")
    if layers[0].get("mediaType") != WASM_LAYER:
        raise RegistryError(f"layer media type {layers[0].get('mediaType')} is not {WASM_LAYER}")
    digest = layers[0].get("digest")
    if not isinstance(digest, str):
        raise RegistryError("the layer has no digest")
    return digest


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    detail = ""
    try:
        errors = response.json().get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        detail = response.text[:200]
    status = f"{response.status_code} {response.reason_phrase}"
    raise RegistryError(f"{response.request.method} {response.request.url} answered {status}: {detail}")


def _describe(error: Exception) -> str:
    if isinstance(error, httpx.HTTPError) and not str(error):
        return type(error).__name__
    return str(error)
