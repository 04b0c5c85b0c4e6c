"""Where an OCI registry's credentials may go (docs/security.md, "Credentials").

Registry credentials answer the registry's own challenge. With the Bearer token flow (ghcr.io, GitLab,
Harbor, Docker Hub) the registry names a *token realm* in `WWW-Authenticate`, and the credentials are sent
there: so a registry, or whoever answers in its name, could point them anywhere. They go to a realm only
over HTTPS, and only when the realm is on the registry's own host and port or on a host the operator
listed in `registry-token-realms` (`NAMESPACES__<NS>__REGISTRY_TOKEN_REALMS`, e.g. `auth.docker.io` for
Docker Hub). Redirects never carry credentials to another origin (httpx drops `Authorization` there).
"""

from __future__ import annotations

import httpx


def challenge(header: str) -> tuple[str, dict[str, str]]:
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


def _origin(url: httpx.URL) -> tuple[str, int]:
    default = 443 if url.scheme == "https" else 80
    return url.host.lower(), url.port or default


def listed_origin(entry: str) -> tuple[str, int]:
    """An operator's `registry-token-realms` entry: `host`, `host:port` or `https://host[:port][/path]`."""
    text = entry.strip()
    if "://" not in text:
        text = f"https://{text}"
    return _origin(httpx.URL(text))


def realm_refusal(realm: str, registry_url: str, listed: tuple[str, ...]) -> str | None:
    """Why credentials must not go to `realm`, or None when they may."""
    try:
        url = httpx.URL(realm)
    except httpx.InvalidURL:
        return f"the token realm {realm!r} is not a URL"
    if url.scheme != "https":
        return f"the token realm {realm} is not HTTPS"
    origin = _origin(url)
    registry = httpx.URL(registry_url)
    if origin == (registry.host.lower(), registry.port or 443):
        return None
    if origin in {listed_origin(entry) for entry in listed}:
        return None
    return f"the token realm {realm} is neither the registry's own host and port nor listed by the operator"
