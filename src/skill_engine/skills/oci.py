"""Pulls skills from an OCI registry through the distribution API (engine-spec §5.4, sdk-spec §1.5-1.6).

A skill `<name>:<tag>` lives at `<registry>/<base-repository>/<name>:<tag>` as a Wasm OCI artifact: an OCI
image manifest whose config is `application/vnd.wasm.config.v0+json` and whose single layer is the
`application/wasm` component, as `pharia-skill publish` (and `oras push`) writes it. The digest of a version
is the manifest digest, so re-pointing a tag is noticed without downloading anything.

HTTPS by default, trusting the system store and `SSL_CERT_FILE`; a registry written `http://host:port`
is spoken to in plain HTTP (local development only). Credentials answer the registry's challenge: HTTP
Basic directly, or exchanged for a Bearer token at the realm the registry names (the token flow of
ghcr.io, GitLab, Harbor, Docker Hub), under the rules of skills/oci_auth.py.

Names and tags are checked again here (skills/names.py) before they become a URL. Every body is streamed
with a counter: a manifest above 4 MiB or a layer above `MAX_SKILL_SIZE` is refused, not downloaded.
Hashing a layer of hundreds of MiB takes a second of CPU: it runs on a worker thread (sha256 releases the
GIL), never on the event loop; the body is collected without a final copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import re
from typing import Any

import httpx

from skill_engine.skills.names import MAX_NAME_LENGTH, InvalidName, check_name, check_tag, quoted
from skill_engine.skills.oci_auth import challenge, realm_refusal
from skill_engine.skills.registry import Pulled, RegistryError
from skill_engine.skills.tls import trust_store

log = logging.getLogger("skill_engine.oci")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WASM_CONFIG = "application/vnd.wasm.config.v0+json"
WASM_LAYER = "application/wasm"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
"""Bytes of a manifest (distribution's own limit); larger ones are refused unread."""
MAX_TOKEN_RESPONSE_SIZE = 1024 * 1024
MAX_ERROR_BODY_SIZE = 64 * 1024
MAX_REPOSITORY_LENGTH = 255
OFF_LOOP = 1024 * 1024
"""Bodies from this size on are hashed on a worker thread."""
DIGEST_PATTERN = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{1,256}")


class _NotFound(Exception):
    pass


class TooLarge(RegistryError):
    pass


def split_registry(registry: str) -> tuple[str, str]:
    """(`https://host:port` base URL, `host:port`) from `host:port`, `https://host` or `http://host`."""
    registry = registry.strip().rstrip("/")
    for scheme in ("http://", "https://"):
        if registry.lower().startswith(scheme):
            host = registry[len(scheme) :]
            return f"{scheme}{host}", host
    return f"https://{registry}", registry


class OciRegistry:
    def __init__(
        self,
        registry: str,
        base_repository: str | None = None,
        user: str | None = None,
        password: str | None = None,
        *,
        token_realms: tuple[str, ...] = (),
        max_blob_size: int = 1024**3,
        realms_key: str = "REGISTRY_TOKEN_REALMS",
    ) -> None:
        self.base_url, self.host = split_registry(registry)
        self.base_repository = (base_repository or "").strip("/")
        self._credentials = (user, password) if user is not None and password is not None else None
        self.token_realms = token_realms
        self.max_blob_size = max_blob_size
        self._realms_key = realms_key
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"OciRegistry({self.base_url!r}, {self.base_repository!r})"

    def repository(self, name: str) -> str:
        """`<base-repository>/<name>` for a valid skill name only: a name is never a path."""
        try:
            check_name(name)
        except InvalidName as e:
            raise RegistryError(str(e)) from None
        repository = f"{self.base_repository}/{name}" if self.base_repository else name
        if len(repository) > MAX_REPOSITORY_LENGTH:
            raise RegistryError(f"the repository name {repository[:MAX_NAME_LENGTH]}… is too long")
        return repository

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
        try:
            repository = self.repository(name)
            check_tag(name, tag)
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
        try:
            repository = self.repository(name)
            check_tag(name, tag)
            response, _ = await self._send("HEAD", f"/v2/{repository}/manifests/{tag}", repository, 0)
            if response.status_code == 404:
                return None
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
        path = f"/v2/{repository}/manifests/{tag}"
        response, raw = await self._send("GET", path, repository, MAX_MANIFEST_SIZE)
        if response.status_code == 404:
            raise _NotFound()
        digest = response.headers.get("docker-content-digest") or f"sha256:{await _sha256(raw)}"
        return raw, str(digest)

    async def _blob(self, repository: str, digest: str) -> bytes:
        _, data = await self._send("GET", f"/v2/{repository}/blobs/{digest}", repository, self.max_blob_size)
        algorithm, _, expected = digest.partition(":")
        if algorithm == "sha256" and await _sha256(data) != expected:
            raise RegistryError(f"layer {digest} does not match its digest")
        return data

    async def _send(
        self, method: str, path: str, repository: str, limit: int
    ) -> tuple[httpx.Response, bytes]:
        """The answer to `method path` with its body (at most `limit` bytes), after the registry's auth
        challenge if any; a 404 is returned, other failures raise."""
        url = self.base_url + path
        headers = {"accept": OCI_MANIFEST} if "/manifests/" in path else {}
        token = self._tokens.get(repository)
        if token:
            headers["authorization"] = f"Bearer {token}"
        basic = self._credentials if self._basic and not token else None
        response, body = await self._fetch(method, url, headers, basic, limit)
        if response.status_code == 401:
            scheme, params = challenge(response.headers.get("www-authenticate", ""))
            headers.pop("authorization", None)
            if scheme == "basic" and self._credentials is not None and basic is None:
                self._basic = True  # from now on sent up front, saving a round trip per request
                response, body = await self._fetch(method, url, headers, self._credentials, limit)
            elif scheme == "bearer" and "realm" in params:
                token = await self._token(params, repository)
                self._tokens[repository] = token
                headers["authorization"] = f"Bearer {token}"
                response, body = await self._fetch(method, url, headers, None, limit)
        if response.status_code != 404:
            _check(response, body)
        return response, body

    async def _fetch(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
        limit: int,
    ) -> tuple[httpx.Response, bytes]:
        """Streams the body with a counter: a body above `limit` is refused, never downloaded."""
        request = self.client.build_request(method, url, headers=headers)
        response = await self.client.send(request, auth=auth, stream=True)
        try:
            if not response.is_success:
                limit = MAX_ERROR_BODY_SIZE
            declared = response.headers.get("content-length", "") if method != "HEAD" else ""
            if response.is_success and declared.isdigit() and int(declared) > limit:
                raise TooLarge(f"{_what(url)} has {int(declared)} bytes, more than the limit of {limit}")
            # BytesIO grows in place and hands its buffer over without a copy: one big copy (a join or
            # bytes(bytearray)) would hold the GIL, and so stall the loop, even on a worker thread.
            body = io.BytesIO()
            async for chunk in response.aiter_bytes():
                body.write(chunk)
                if body.tell() > limit:
                    if not response.is_success:
                        break
                    raise TooLarge(f"{_what(url)} is larger than the limit of {limit} bytes")
        finally:
            await response.aclose()
        data = body.getvalue()
        return response, data[:limit] if len(data) > limit else data

    async def _token(self, params: dict[str, str], repository: str) -> str:
        realm = params["realm"]
        credentials = self._credentials
        if credentials is not None:
            refusal = realm_refusal(realm, self.base_url, self.token_realms)
            if refusal is not None:
                log.warning("registry %s: no credentials sent: %s", self.host, refusal)
                raise RegistryError(
                    f"{refusal}; credentials go to a token realm only over HTTPS on the registry's own "
                    f"host and port or on a host listed in {self._realms_key}"
                )
        query = {"scope": f"repository:{repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        url = str(httpx.URL(realm).copy_merge_params(query))
        response, body = await self._fetch("GET", url, {}, credentials, MAX_TOKEN_RESPONSE_SIZE)
        _check(response, body)
        answer = json.loads(body)
        token = answer.get("token") or answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str):
            raise RegistryError("the token service answered without a token")
        return token


async def _sha256(data: bytes) -> str:
    """The hex SHA-256 of `data`, on a worker thread when it is large (a 512 MiB layer takes ~0.5 s)."""
    if len(data) < OFF_LOOP:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


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
    if DIGEST_PATTERN.fullmatch(digest) is None:  # it becomes part of the blob's URL
        raise RegistryError(f"the layer digest {quoted(digest)} is not a valid OCI digest")
    return digest


def _what(url: str) -> str:
    return "the manifest" if "/manifests/" in url else "the layer" if "/blobs/" in url else url


def _check(response: httpx.Response, body: bytes) -> None:
    if response.is_success:
        return
    detail = ""
    try:
        errors = json.loads(body).get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError):
        detail = body[:200].decode("utf-8", "replace")
    status = f"{response.status_code} {response.reason_phrase}"
    raise RegistryError(f"{response.request.method} {response.request.url} answered {status}: {detail}")


def _describe(error: Exception) -> str:
    if isinstance(error, httpx.HTTPError) and not str(error):
        return type(error).__name__
    return str(error)
