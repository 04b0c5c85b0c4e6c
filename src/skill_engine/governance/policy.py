"""Data access policies: per namespace, allow-lists of models, collections, MCP servers and tools.

A list is names or glob patterns (`llama-*`, `finance/*`); an absent list allows its whole kind (today's
behaviour), an empty one allows nothing. Policies come from the operator's configuration only.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from skill_engine.governance import audit


class Kind(StrEnum):
    MODEL = "model"
    COLLECTION = "collection"
    MCP_SERVER = "MCP server"
    TOOL = "tool"


@dataclass(frozen=True)
class Policy:
    models: tuple[str, ...] | None = None
    collections: tuple[str, ...] | None = None
    mcp_servers: tuple[str, ...] | None = None
    tools: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        models: Sequence[str] | None = None,
        collections: Sequence[str] | None = None,
        mcp_servers: Sequence[str] | None = None,
        tools: Sequence[str] | None = None,
    ) -> Policy:
        def freeze(names: Sequence[str] | None) -> tuple[str, ...] | None:
            return None if names is None else tuple(names)

        return cls(freeze(models), freeze(collections), freeze(mcp_servers), freeze(tools))

    def patterns(self, kind: Kind) -> tuple[str, ...] | None:
        return {
            Kind.MODEL: self.models,
            Kind.COLLECTION: self.collections,
            Kind.MCP_SERVER: self.mcp_servers,
            Kind.TOOL: self.tools,
        }[kind]

    def allows(self, kind: Kind, name: str) -> bool:
        patterns = self.patterns(kind)
        return patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)


ALLOW_ALL = Policy()


class Policies:
    """All policies of one engine: per namespace, plus the default for namespaces without one and for
    CSI over HTTP (which is always bound by the default, and by the namespace it names, if any)."""

    def __init__(
        self, by_namespace: Mapping[str, Policy] | None = None, default: Policy | None = None
    ) -> None:
        self.by_namespace = dict(by_namespace or {})
        self.default = default

    def of(self, namespace: str | None) -> list[tuple[str | None, Policy]]:
        """The policies that bind `namespace` (None: a CSI over HTTP call naming no namespace)."""
        own = self.by_namespace.get(namespace) if namespace else None
        if own is not None:
            return [(namespace, own)]
        return [] if self.default is None else [(None, self.default)]

    def allows(self, namespace: str | None, kind: Kind, name: str, over_http: bool = False) -> bool:
        return all(policy.allows(kind, name) for _, policy in self._binding(namespace, over_http))

    def denies(self, namespace: str | None, kind: Kind, name: str, over_http: bool = False) -> bool:
        """Whether a policy binding `namespace` denies `name` (the denial is noted in the audit record)."""
        if self.allows(namespace, kind, name, over_http):
            return False
        audit.deny(kind.value, name)
        return True

    def _binding(self, namespace: str | None, over_http: bool) -> list[tuple[str | None, Policy]]:
        binding = self.of(namespace)
        if over_http and self.default is not None and namespace in self.by_namespace:
            binding.append((None, self.default))
        return binding
