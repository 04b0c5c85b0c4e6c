"""What a skill is, as api, skills and runtime all see it: its kind and its `/metadata` answer."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SkillKind(StrEnum):
    FUNCTION = "function"
    MESSAGE_STREAM = "message_stream"


@dataclass(frozen=True)
class SkillMetadata:
    description: str | None
    version: str | None
    skill_type: SkillKind
    input_schema: Any
    output_schema: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "version": self.version,
            "skill_type": self.skill_type.value,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }
