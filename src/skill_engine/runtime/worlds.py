"""Which `pharia:skill` worlds the engine serves, and how a component's exports select one (engine-spec §4.1).

A component is inspected by its exported interface names, e.g. `pharia:skill/skill-handler@0.4.0`: the
first export of package `pharia:skill` with a version decides. Each WIT line has a highest patch the
engine accepts; anything newer is "not supported yet", anything older than 0.2 "no longer supported".
0.5 is 0.4 under another version, served only with the `alpha` feature (`PHARIA_AI_FEATURE_SET=BETA`);
without it a 0.5 skill is "not supported yet" like any line this installation does not serve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from skill_engine.errors import SkillLoadError

SKILL_HANDLER = "skill-handler"
MESSAGE_STREAM = "message-stream"
_EXPORT = re.compile(r"^pharia:skill/([a-z-]+)@(\d+)\.(\d+)\.(\d+)")

NOT_A_SKILL_WORLD = "Web assembly component is not using a supported pharia:skill world."


@dataclass(frozen=True)
class Line:
    """One WIT line (`0.x`) as this engine serves it."""

    highest_patch: int
    metadata_version: str | None
    """What `/metadata` reports as `version` for function skills (None: no metadata export)."""
    exports: frozenset[str]
    alpha: bool = False
    """Served only when the `alpha` feature is on."""

    @property
    def has_metadata(self) -> bool:
        return self.metadata_version is not None


_BOTH = frozenset({SKILL_HANDLER, MESSAGE_STREAM})
LINES: dict[tuple[int, int], Line] = {
    (0, 2): Line(10, None, frozenset({SKILL_HANDLER})),
    (0, 3): Line(11, "0.3", _BOTH),
    (0, 4): Line(0, "0.4", _BOTH),
    # PhariaEngine reports "0.4" for 0.5 skills; we report the version the skill was built for.
    (0, 5): Line(0, "0.5", _BOTH, alpha=True),
}
_NEWEST = max(LINES)


@dataclass(frozen=True)
class World:
    """What a component was built for: its WIT line and the export that runs it."""

    line: Line
    version: str
    interface: str
    """`skill-handler` (function skill) or `message-stream`."""
    export: str
    """The full export name, e.g. `pharia:skill/message-stream@0.3.6`."""


def too_new(version: str) -> str:
    return (
        f"Skill version {version} is not supported by this Kernel installation yet. Try updating your "
        "Kernel version or downgrading your SDK."
    )


def no_longer_supported(version: str) -> str:
    return f"Skill version {version} is no longer supported by the Kernel. Try upgrading your SDK."


def detect(exports: Iterable[str], alpha: bool) -> World:
    """The world of a component with these export names; raises `SkillLoadError` with §4.1's texts."""
    for name in exports:
        match = _EXPORT.match(name)
        if match is None:
            continue
        interface = match.group(1)
        major, minor, patch = (int(g) for g in match.group(2, 3, 4))
        version = f"{major}.{minor}.{patch}"
        line = LINES.get((major, minor))
        if line is None:
            if (major, minor) > _NEWEST:
                raise SkillLoadError(too_new(version))
            raise SkillLoadError(no_longer_supported(version))
        if patch > line.highest_patch or (line.alpha and not alpha):
            raise SkillLoadError(too_new(version))
        if interface not in line.exports:
            continue
        return World(line, version, interface, name)
    raise SkillLoadError(NOT_A_SKILL_WORLD)
