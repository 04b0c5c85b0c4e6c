"""Where each namespace's description comes from, one class per shape of engine-spec §3.3.

`describe()` either returns the current description or raises:
- `Recoverable` (network error, HTTP 5xx or 429, body read error): the watcher keeps the last good state;
- `Unrecoverable` (HTTP 401/403, other 4xx, bad TOML, unreadable file, missing directory): the namespace
  is marked misconfigured with the message as the detail of its 500, until a later pass succeeds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import httpx

from skill_engine.config import NamespaceConfig, config_error, config_problem
from skill_engine.skills.description import (
    InvalidDescription,
    NamespaceDescription,
    ProgrammableSkill,
    Refused,
    parse_description,
    parse_entries,
    parse_native_tools,
    parse_skills,
)
from skill_engine.skills.names import InvalidName, check_name
from skill_engine.skills.oci import OciRegistry
from skill_engine.skills.registry import DirectoryRegistry, Registry
from skill_engine.skills.tls import trust_store

log = logging.getLogger("skill_engine.namespaces")

CONFIG_TIMEOUT = 10.0
"""Seconds for fetching a namespace file over HTTP (no retry: the next pass retries)."""
MAX_NAMESPACE_FILE_SIZE = 1024 * 1024
"""Bytes of a namespace file; a larger one is refused (unrecoverable) without reading further."""


class Recoverable(Exception):
    pass


class Unrecoverable(Exception):
    pass


class Source(Protocol):
    async def describe(self) -> NamespaceDescription: ...


class WatchedDirectory:
    """`directory = "skills"`: every `<name>.wasm` is a skill with tag `latest` and its mtime as digest."""

    def __init__(
        self, directory: Path, mcp_servers: list[str], native_tools: list[str], max_size: int = 1024**3
    ) -> None:
        self.registry = DirectoryRegistry(directory, max_size)
        self.mcp_servers = tuple(mcp_servers)
        self.native_tools = tuple(native_tools)

    async def describe(self) -> NamespaceDescription:
        directory = self.registry.directory
        try:
            found = await asyncio.to_thread(self.registry.names)
        except (FileNotFoundError, NotADirectoryError):
            raise Unrecoverable(f"The directory to watch '\"{directory}\"' is not a directory.") from None
        except OSError as e:
            raise Recoverable(f"could not list {directory}: {e}") from None
        skills: list[ProgrammableSkill] = []
        refused: list[Refused] = []
        for name, digest in sorted(found.items()):
            try:
                skills.append(ProgrammableSkill(check_name(name), "latest", digest))
            except InvalidName as e:
                refused.append(Refused(name, str(e)))
        return NamespaceDescription(tuple(skills), self.mcp_servers, self.native_tools, tuple(refused))


class InPlace:
    """`skills = [...]` in the engine's own configuration: the same description every pass."""

    def __init__(self, description: NamespaceDescription) -> None:
        self.description = description

    async def describe(self) -> NamespaceDescription:
        return self.description


class LocalFile:
    """`config-url = "file://namespace.toml"`: the path is everything after `file://` (relative allowed)."""

    def __init__(self, url: str) -> None:
        self.path = Path(url[len("file://") :])

    async def describe(self) -> NamespaceDescription:
        try:
            text = await asyncio.to_thread(self._read)
        except (OSError, UnicodeDecodeError) as e:
            log.debug("reading %s failed: %s", self.path, e)
            raise Unrecoverable(f"Unable to read file {self.path}") from None
        if text is None:
            log.warning("namespace file %s is larger than %d bytes", self.path, MAX_NAMESPACE_FILE_SIZE)
            raise Unrecoverable(
                f"Unable to read file {self.path}: larger than {MAX_NAMESPACE_FILE_SIZE} bytes"
            )
        try:
            return parse_description(text)
        except InvalidDescription as e:
            log.warning("namespace file %s: %s", self.path, e)
            raise Unrecoverable(
                f"Unable to parse file {self.path} into a valid configuration for a team owned namespace."
            ) from None

    def _read(self) -> str | None:
        with self.path.open("rb") as file:
            data = file.read(MAX_NAMESPACE_FILE_SIZE + 1)
        return data.decode("utf-8") if len(data) <= MAX_NAMESPACE_FILE_SIZE else None


class RemoteFile:
    """`config-url = "https://..."`, fetched with `config-access-token` as a Bearer token if set."""

    def __init__(self, namespace: str, url: str, token: str | None, client: httpx.AsyncClient) -> None:
        self.namespace = namespace
        self.url = url
        self.token = token
        self.client = client

    async def describe(self) -> NamespaceDescription:
        # The token goes to the file's origin only: httpx drops `Authorization` on a redirect elsewhere.
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response, body = await self._get(headers)
        except httpx.HTTPError as e:
            raise Recoverable(f"fetching {self.url} failed: {e or type(e).__name__}") from None
        status = response.status_code
        if status in (401, 403):
            variable = f"{env_prefix(self.namespace)}__CONFIG_ACCESS_TOKEN"
            log.error(
                "namespace %s: %s answered %d; check the access token configured in %s",
                self.namespace,
                self.url,
                status,
                variable,
            )
            raise Unrecoverable(f"Invalid token configured for accessing '{self.url}'.")
        if status == 429 or status >= 500:
            raise Recoverable(f"{self.url} answered {status} {response.reason_phrase}")
        if 400 <= status < 500:
            raise Unrecoverable(
                f"HTTP status client error ({status} {response.reason_phrase}) for url ({self.url})"
            )
        if body is None:
            log.warning("namespace file at %s is larger than %d bytes", self.url, MAX_NAMESPACE_FILE_SIZE)
            raise Unrecoverable(
                f"The file at '{self.url}' is larger than the limit of {MAX_NAMESPACE_FILE_SIZE} bytes."
            )
        try:
            return parse_description(body.decode("utf-8", "replace"))
        except InvalidDescription as e:
            log.warning("namespace file at %s: %s", self.url, e)
            raise Unrecoverable(
                f"Unable to parse file at '{self.url}' into a valid configuration for a team owned namespace."
            ) from None

    async def _get(self, headers: dict[str, str]) -> tuple[httpx.Response, bytes | None]:
        """The answer and its body, None when the body is larger than MAX_NAMESPACE_FILE_SIZE."""
        async with self.client.stream("GET", self.url, headers=headers, timeout=CONFIG_TIMEOUT) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_NAMESPACE_FILE_SIZE:
                return response, None
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_NAMESPACE_FILE_SIZE:
                    return response, None
        return response, bytes(body)


def make_registry(
    config: NamespaceConfig, namespace: str = "<NS>", max_size: int = 512 * 1024**2
) -> Registry | None:
    """OCI wins over `path` when both are configured (§3.3)."""
    if config.registry:
        password = config.registry_password
        return OciRegistry(
            config.registry,
            config.base_repository,
            config.registry_user,
            password.get_secret_value() if password is not None else None,
            token_realms=tuple(config.registry_token_realms),
            max_blob_size=max_size,
            realms_key=f"{env_prefix(namespace)}__REGISTRY_TOKEN_REALMS",
        )
    if config.path is not None:
        return DirectoryRegistry(config.path, max_size)
    return None


def env_prefix(namespace: str) -> str:
    """`NAMESPACES__MY_TEAM` for namespace `my-team`: where its keys live in the environment."""
    return f"NAMESPACES__{namespace.replace('-', '_').upper()}"


def check_namespaces(namespaces: Mapping[str, NamespaceConfig]) -> None:
    """The in-place skill entries and native tools of every namespace; a ConfigError stops start-up."""
    problems = []
    for name, config in namespaces.items():
        try:
            if config.config_url is None and config.directory is None and config.skills is not None:
                parse_skills(config.skills)
            parse_native_tools(config.native_tools)
        except InvalidDescription as e:
            problems.append(config_problem(["namespaces", name], f"Value error, {e}"))
    if problems:
        raise config_error(problems)


def make_source(
    namespace: str, config: NamespaceConfig, client: httpx.AsyncClient, max_size: int = 512 * 1024**2
) -> Source:
    """The first shape that fits: team-owned (`config-url`), watched `directory`, in-place `skills`."""
    if config.config_url is not None:
        if config.config_url.lower().startswith("file://"):
            return LocalFile(config.config_url)
        token = config.config_access_token
        return RemoteFile(namespace, config.config_url, token.get_secret_value() if token else None, client)
    if config.directory is not None:
        return WatchedDirectory(config.directory, config.mcp_servers, config.native_tools, max_size)
    assert config.skills is not None, "config validation guarantees one of the three shapes"
    skills, refused = parse_entries(config.skills)
    return InPlace(
        NamespaceDescription(skills, tuple(config.mcp_servers), tuple(config.native_tools), refused)
    )


def config_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=trust_store(), timeout=CONFIG_TIMEOUT, follow_redirects=True)
