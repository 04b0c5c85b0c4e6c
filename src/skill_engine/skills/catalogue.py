"""What skills exist: each namespace's skills as the watcher last reported them, its refused entries and
its error state. Knows nothing about loading; `SkillStore` (skills/store.py) acts on the changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from skill_engine.errors import MisconfiguredNamespace, SkillNotFound
from skill_engine.skills.description import ChatSkill
from skill_engine.skills.registry import Registry
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine.store")


@dataclass(frozen=True)
class SkillDescription:
    """A programmable skill: `name:tag` in `registry`; `digest` only when known up front (directories)."""

    namespace: str
    name: str
    registry: Registry
    tag: str = "latest"
    digest: str | None = None

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ConfiguredChat:
    namespace: str
    entry: ChatSkill

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.entry.name}"


KnownSkill = SkillDescription | ConfiguredChat


class Catalogue:
    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self._known: dict[str, dict[str, KnownSkill]] = {}
        self._errors: dict[str, str] = {}
        self._refused: dict[str, dict[str, str]] = {}

    def set_namespace(
        self, namespace: str, skills: dict[str, KnownSkill], refused: dict[str, str]
    ) -> dict[str, KnownSkill]:
        """Replaces a namespace's skills and refused entries (clearing its error); the previous skills."""
        self._errors.pop(namespace, None)
        for name, reason in refused.items():
            if self._refused.get(namespace, {}).get(name) != reason:
                log.error("namespace %s: an entry was refused and is not served: %s", namespace, reason)
        if refused:
            self._refused[namespace] = dict(refused)
        else:
            self._refused.pop(namespace, None)
        self.telemetry.metrics.refused_skills.labels(namespace).set(len(refused))
        previous = self._known.get(namespace, {})
        self._known[namespace] = dict(skills)
        return previous

    def mark_misconfigured(self, namespace: str, error: str) -> None:
        """Records the namespace's error (its skills must have been removed already)."""
        self._errors[namespace] = error

    def refused(self, namespace: str) -> dict[str, str]:
        """The namespace's entries refused for their name or tag (name → reason)."""
        return dict(self._refused.get(namespace, {}))

    def refused_counts(self) -> dict[str, int]:
        return {namespace: len(entries) for namespace, entries in self._refused.items()}

    def skill_paths(self, kind: str | None = None) -> list[str]:
        """Sorted by namespace, then name (not by the joined string: `a-b/x` comes after `a/x`); `kind` is
        `chat` or `programmable` to filter."""
        return [
            f"{namespace}/{name}"
            for namespace, skills in sorted(self._known.items())
            for name, skill in sorted(skills.items())
            if kind is None or (kind == "chat") == isinstance(skill, ConfiguredChat)
        ]

    def namespace_error(self, namespace: str) -> str | None:
        """Why a namespace is misconfigured (its skills are not served), or None."""
        return self._errors.get(namespace)

    def known(self, namespace: str) -> dict[str, KnownSkill]:
        """The skills a namespace currently serves, by name (a copy)."""
        return dict(self._known.get(namespace, {}))

    def get(self, namespace: str, name: str) -> KnownSkill | None:
        return self._known.get(namespace, {}).get(name)

    def is_current(self, description: SkillDescription) -> bool:
        """Whether `description` is still what its namespace serves (it may have changed meanwhile)."""
        return self.get(description.namespace, description.name) == description

    def resolve(self, namespace: str, name: str) -> KnownSkill:
        """The served skill; MisconfiguredNamespace (namespace error, refused entry) or SkillNotFound."""
        if namespace in self._errors:
            raise MisconfiguredNamespace(namespace, self._errors[namespace])
        reason = self._refused.get(namespace, {}).get(name)
        if reason is not None:
            raise MisconfiguredNamespace(namespace, reason)
        description = self.get(namespace, name)
        if description is None:
            raise SkillNotFound()
        return description
