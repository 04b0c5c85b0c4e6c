"""What a namespace serves: its skills, MCP servers and native tools (engine-spec §1.5, §3.3).

A *namespace description* comes from a team's TOML file (`config-url`), a watched directory, or the
in-place `skills = [...]` of the engine's own configuration. Parsing is strict where PhariaEngine is strict
(`skills` required, unknown native tools rejected) and keeps its one quirk: a `type = "chat"` entry missing
a chat field silently becomes a programmable skill `{name, tag}`.

Beyond PhariaEngine, an entry whose name or tag is not a valid skill name or OCI tag (skills/names.py) is
refused on its own: it lands in `refused` with a text naming it, and the namespace's other skills keep
serving.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skill_engine.csi.tool_names import KNOWN_NATIVE_TOOLS
from skill_engine.skills.names import InvalidName, check_name, check_tag

log = logging.getLogger("skill_engine.namespaces")

OPERATOR_ONLY = ("policy", "limits")
"""Keys a team's namespace file must not set: they belong to the operator (docs/governance.md)."""
_warned: set[int] = set()


@dataclass(frozen=True)
class ProgrammableSkill:
    """A Wasm component pulled from the namespace's registry as `<name>:<tag>`."""

    name: str
    tag: str = "latest"
    digest: str | None = None
    """Known up front only for directory listings (file mtime); registries report it when pulled."""


@dataclass(frozen=True)
class ChatSkill:
    """A synthesized message-stream skill: the system prompt, then the caller's conversation (§5.1)."""

    name: str
    version: str
    model: str
    system_prompt: str


SkillEntry = ProgrammableSkill | ChatSkill


@dataclass(frozen=True)
class Refused:
    """An entry refused for its name or tag: `name` as written (may be anything), `reason` names it."""

    name: str
    reason: str


@dataclass(frozen=True)
class NamespaceDescription:
    skills: tuple[SkillEntry, ...] = ()
    mcp_servers: tuple[str, ...] = ()
    native_tools: tuple[str, ...] = ()
    refused: tuple[Refused, ...] = ()
    """Entries not served because their name or tag is not allowed (never fetched)."""

    @property
    def skills_by_name(self) -> dict[str, SkillEntry]:
        """Later entries with the same name win, as when a map is built from the list."""
        return {skill.name: skill for skill in self.skills}


EMPTY = NamespaceDescription()


class InvalidDescription(ValueError):
    """The description does not have the documented shape; the message says what is wrong."""


_CHAT_FIELDS = ("name", "version", "model", "system_prompt")


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidDescription(f"{what} must be a string, got {type(value).__name__}")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidDescription(f"`{what}` must be an array of strings")
    return tuple(_string(item, f"every entry of `{what}`") for item in value)


def parse_skill(entry: Any) -> SkillEntry:
    if not isinstance(entry, Mapping):
        raise InvalidDescription('every skill must be a table such as {name = "haiku", tag = "v1"}')
    if "name" not in entry:
        raise InvalidDescription("missing field `name` in a skill entry")
    name = _string(entry["name"], "`name`")
    if entry.get("type") == "chat" and all(key in entry for key in _CHAT_FIELDS):
        chat = ChatSkill(*(_string(entry[key], f"`{key}`") for key in _CHAT_FIELDS))
        check_name(name)
        return chat
    tag = _string(entry.get("tag", "latest"), "`tag`")
    return ProgrammableSkill(check_name(name), check_tag(name, tag))


def parse_skills(entries: Sequence[Any]) -> tuple[SkillEntry, ...]:
    """The valid entries; use `parse_entries` to also learn which were refused for their names."""
    return parse_entries(entries)[0]


def parse_entries(entries: Sequence[Any]) -> tuple[tuple[SkillEntry, ...], tuple[Refused, ...]]:
    """Entries with an invalid name or tag are refused one by one; a malformed entry (not a table, no
    name, wrong types) still invalidates the whole description, as in PhariaEngine."""
    skills: list[SkillEntry] = []
    refused: list[Refused] = []
    for entry in entries:
        try:
            skills.append(parse_skill(entry))
        except InvalidName as e:
            refused.append(Refused(str(entry["name"]), str(e)))
    return tuple(skills), tuple(refused)


def parse_native_tools(value: Any) -> tuple[str, ...]:
    names = _strings(value, "native-tools")
    for name in names:
        if name not in KNOWN_NATIVE_TOOLS:
            expected = ", ".join(f"`{n}`" for n in KNOWN_NATIVE_TOOLS)
            raise InvalidDescription(f"unknown native tool `{name}`, expected one of {expected}")
    return names


def parse_description(text: str) -> NamespaceDescription:
    """A team's namespace file: `skills` (required), `mcp-servers` and `native-tools` (optional)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InvalidDescription(str(e)) from None
    if "skills" not in data:
        raise InvalidDescription("missing field `skills`")
    if not isinstance(data["skills"], list):
        raise InvalidDescription("`skills` must be an array")
    ignored = [key for key in OPERATOR_ONLY if key in data]
    if ignored and hash(text) not in _warned:  # once per file content, not at every watcher pass
        if len(_warned) > 1000:
            _warned.clear()
        _warned.add(hash(text))
        for key in ignored:
            log.warning(
                "ignoring `%s` in a namespace file: %s set in the engine's configuration only",
                key,
                "policies are" if key == "policy" else "limits are",
            )
    skills, refused = parse_entries(data["skills"])
    return NamespaceDescription(
        skills=skills,
        refused=refused,
        mcp_servers=_strings(data.get("mcp-servers", []), "mcp-servers"),
        native_tools=parse_native_tools(data.get("native-tools", [])),
    )
