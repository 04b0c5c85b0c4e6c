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


def budgets(namespaces: dict[str, NamespaceConfig]) -> TokenBudgets:
    return TokenBudgets(
        {
            name: ns.limits.tokens_per_minute
            for name, ns in namespaces.items()
            if ns.limits.tokens_per_minute is not None
        }
    )
