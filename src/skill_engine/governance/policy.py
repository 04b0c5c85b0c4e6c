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
    """All policies of one engine: per namespace, plus the default for namespaces without one, plus the
    baseline of CSI over HTTP.

    CSI over HTTP is not a skill of any namespace: the namespace it names (`X-Namespace`, a tool call's
    `namespace`) is the caller's choice, so naming one may only narrow what the caller gets, never widen
    it. The baseline is the default `[policy]`; a kind it does not list is closed as soon as some
    namespace's policy restricts that kind (docs/decisions/0011-csi-over-http-policy.md). Without any
    policy everything stays open, as in PhariaEngine.
    """

    def __init__(
        self, by_namespace: Mapping[str, Policy] | None = None, default: Policy | None = None
    ) -> None:
        self.by_namespace = dict(by_namespace or {})
        self.default = default
        self.over_http = self._baseline()

    def _baseline(self) -> Policy | None:
        default = self.default or ALLOW_ALL
        governed = {k for p in self.by_namespace.values() for k in Kind if p.patterns(k) is not None}

        def closed_if_governed(kind: Kind) -> tuple[str, ...] | None:
            listed = default.patterns(kind)
            return listed if listed is not None or kind not in governed else ()

        baseline = Policy(*(closed_if_governed(kind) for kind in Kind))
        return None if baseline == ALLOW_ALL else baseline

    def of(self, namespace: str | None) -> list[tuple[str | None, Policy]]:
        """The policies that bind a skill of `namespace`."""
        own = self.by_namespace.get(namespace) if namespace else None
        if own is not None:
            return [(namespace, own)]
        return [] if self.default is None else [(None, self.default)]

    def allows(self, namespace: str | None, kind: Kind, name: str, over_http: bool = False) -> bool:
        return not self.denying(namespace, kind, name, over_http)

    def denied_by(
        self, namespace: str | None, kind: Kind, name: str, over_http: bool = False
    ) -> tuple[str | None] | None:
        """`(namespace,)` of the first policy that denies `name` (`(None,)`: the engine's default or the
        baseline of CSI over HTTP), None if all allow it. A denial is noted in the audit record."""
        denying = self.denying(namespace, kind, name, over_http)
        if not denying:
            return None
        audit.deny(kind.value, name)
        return (denying[0],)

    def denying(
        self, namespace: str | None, kind: Kind, name: str, over_http: bool = False
    ) -> list[str | None]:
        return [who for who, policy in self._binding(namespace, over_http) if not policy.allows(kind, name)]

    def _binding(self, namespace: str | None, over_http: bool) -> list[tuple[str | None, Policy]]:
        if not over_http:
            return self.of(namespace)
        own = self.by_namespace.get(namespace) if namespace else None
        binding: list[tuple[str | None, Policy]] = [] if own is None else [(namespace, own)]
        if self.over_http is not None:
            binding.append((None, self.over_http))
        return binding
