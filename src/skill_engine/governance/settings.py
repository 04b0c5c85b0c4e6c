"""Governance pieces from the operator's configuration (`[namespaces.<ns>.policy]`, `.limits`, `[policy]`)."""

from __future__ import annotations

from skill_engine.config import NamespaceConfig, PolicyConfig, Settings
from skill_engine.governance.budget import TokenBudgets
from skill_engine.governance.policy import Policies, Policy


def _policy(config: PolicyConfig) -> Policy:
    return Policy.of(config.models, config.collections, config.mcp_servers, config.tools)


def policies(settings: Settings, namespaces: dict[str, NamespaceConfig]) -> Policies:
    return Policies(
        {name: _policy(ns.policy) for name, ns in namespaces.items() if ns.policy is not None},
        _policy(settings.policy) if settings.policy is not None else None,
    )


def split(value: int | None, workers: int, least: int = 1) -> int | None:
    """A worker's share of a host-wide cap (as `workers.per_worker` splits the global ones)."""
    return None if value is None else max(least, value // workers)


def budgets(namespaces: dict[str, NamespaceConfig], workers: int = 1) -> TokenBudgets:
    return TokenBudgets(
        {
            name: per_worker
            for name, ns in namespaces.items()
            if (per_worker := split(ns.limits.tokens_per_minute, workers)) is not None
        }
    )
