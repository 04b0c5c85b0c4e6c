"""Skill names and tags from namespace files are data, never paths (docs/security.md, "Hostile teams").

A team writes its namespace file; the engine turns each entry into a registry reference
`<base-repository>/<name>:<tag>` or a file `<path>/<name>.wasm`. Unchecked, `name = "../other/skill"`
would pull another team's repository with this namespace's credentials, and `x?y` or `%2e%2e` would shape
the URL. So every name and tag is checked before anything is fetched:

- a name is one OCI repository name component, `[a-z0-9]+([._-][a-z0-9]+)*`, at most 128 characters:
  no `/` (a skill is one path segment of `/v1/skills/{namespace}/{name}`, as in PhariaEngine), no `.`/`..`
  segments, no `%`, `?`, `#`, NUL, no upper case, nothing absolute;
- a tag follows the OCI distribution grammar, `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.

The registries check again where a name becomes a URL or a file (skills/oci.py, skills/registry.py).
"""

from __future__ import annotations

import json
import re

NAME_PATTERN = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
MAX_NAME_LENGTH = 128
NAME_RULE = (
    f"a skill name must match `[a-z0-9]+([._-][a-z0-9]+)*` and have at most {MAX_NAME_LENGTH} characters"
)
TAG_RULE = "a tag must match `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`"


class InvalidName(ValueError):
    """A name or tag that must not be used; the message names the entry and the rule."""


def quoted(value: str, limit: int = 80) -> str:
    """The value as a JSON string (control characters and NUL escaped), cut to `limit` characters."""
    text = json.dumps(value[:limit])
    return text if len(value) <= limit else f'{text[:-1]}…" ({len(value)} characters)'


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and NAME_PATTERN.fullmatch(name) is not None


def is_valid_tag(tag: str) -> bool:
    return TAG_PATTERN.fullmatch(tag) is not None


def check_name(name: str) -> str:
    if not is_valid_name(name):
        raise InvalidName(f"the skill name {quoted(name)} was refused: {NAME_RULE}")
    return name


def check_tag(name: str, tag: str) -> str:
    if not is_valid_tag(tag):
        raise InvalidName(f"the tag {quoted(tag)} of skill {quoted(name)} was refused: {TAG_RULE}")
    return tag
