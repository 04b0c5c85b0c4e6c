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
    parse_description,
    parse_native_tools,
    parse_skills,
)
from skill_engine.skills.oci import OciRegistry
from skill_engine.skills.registry import DirectoryRegistry, Registry
from skill_engine.skills.tls import trust_store

log = logging.getLogger("skill_engine.namespaces")

CONFIG_TIMEOUT = 10.0
"""Seconds for fetching a namespace file over HTTP (no retry: the next pass retries)."""


class Recoverable(Exception):
    pass


class Unrecoverable(Exception):
    pass


class Source(Protocol):
    async def describe(self) -> NamespaceDescription: ...


class WatchedDirectory:
    """`directory = "skills"`: every `<name>.wasm` is a skill with tag `latest` and its mtime as digest."""

    def __init__(self, directory: Path, mcp_servers: list[str], native_tools: list[str]) -> None:
        self.registry = DirectoryRegistry(directory)
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
        skills = tuple(ProgrammableSkill(name, "latest", digest) for name, digest in sorted(found.items()))
        return NamespaceDescription(skills, self.mcp_servers, self.native_tools)


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
            text = await asyncio.to_thread(self.path.read_text, "utf-8")
        except (OSError, UnicodeDecodeError) as e:
            log.debug("reading %s failed: %s", self.path, e)
            raise Unrecoverable(f"Unable to read file {self.path}") from None
        try:
            return parse_description(text)
        except InvalidDescription as e:
            log.warning("namespace file %s: %s", self.path, e)
            raise Unrecoverable(
                f"Unable to parse file {self.path} into a valid configuration for a team owned namespace."
            ) from None


class RemoteFile:
    """`config-url = "https://..."`, fetched with `config-access-token` as a Bearer token if set."""

    def __init__(self, namespace: str, url: str, token: str | None, client: httpx.AsyncClient) -> None:
        self.namespace = namespace
        self.url = url
        self.token = token
        self.client = client

    async def describe(self) -> NamespaceDescription:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = await self.client.get(self.url, headers=headers, timeout=CONFIG_TIMEOUT)
        except httpx.HTTPError as e:
            raise Recoverable(f"fetching {self.url} failed: {e or type(e).__name__}") from None
        status = response.status_code
        if status in (401, 403):
            variable = f"NAMESPACES__{self.namespace.replace('-', '_').upper()}__CONFIG_ACCESS_TOKEN"
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
        try:
            return parse_description(response.text)
        except InvalidDescription as e:
            log.warning("namespace file at %s: %s", self.url, e)
            raise Unrecoverable(
                f"Unable to parse file at '{self.url}' into a valid configuration for a team owned namespace."
            ) from None


def make_registry(config: NamespaceConfig) -> Registry | None:
    """OCI wins over `path` when both are configured (§3.3)."""
    if config.registry:
        return OciRegistry(
            config.registry, config.base_repository, config.registry_user, config.registry_password
        )
    if config.path is not None:
        return DirectoryRegistry(config.path)
    return None


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


def make_source(namespace: str, config: NamespaceConfig, client: httpx.AsyncClient) -> Source:
    """The first shape that fits: team-owned (`config-url`), watched `directory`, in-place `skills`."""
    if config.config_url is not None:
        if config.config_url.lower().startswith("file://"):
            return LocalFile(config.config_url)
        return RemoteFile(namespace, config.config_url, config.config_access_token, client)
    if config.directory is not None:
        return WatchedDirectory(config.directory, config.mcp_servers, config.native_tools)
    assert config.skills is not None, "config validation guarantees one of the three shapes"
    return InPlace(
        NamespaceDescription(
            parse_skills(config.skills), tuple(config.mcp_servers), tuple(config.native_tools)
        )
    )


def config_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=trust_store(), timeout=CONFIG_TIMEOUT, follow_redirects=True)
