"""Chat skills (engine-spec §2.4, §5.1): `{type = "chat", name, version, model, system_prompt}` entries of a
namespace description, served natively as message-stream skills without any Wasm.

Input `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}]}`; the configured system
prompt is prepended, the conversation goes to `model` as a chat stream with default parameters, and the
answer streams back as `begin`, one `append` per delta, `end` with the finish reason (`"Stop"`, ...).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from skill_engine.csi import Csi, CsiContext
from skill_engine.csi.types import ChatRequest, Message
from skill_engine.errors import InvalidInput, IsMessageStream
from skill_engine.metadata import SkillKind, SkillMetadata
from skill_engine.skills.builtin import BuiltinSkill, Emit, forward_chat_stream
from skill_engine.skills.description import ChatSkill

ROLES = ("system", "user", "assistant")
METADATA = SkillMetadata(
    "A chat skill",
    "0.3",
    SkillKind.MESSAGE_STREAM,
    {
        "properties": {"messages": {"title": "Messages", "type": "array"}},
        "required": ["messages"],
        "title": "SkillInput",
        "type": "object",
    },
    None,
)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if value is None:
        return "null"
    return "sequence" if isinstance(value, list) else "map"


def parse_messages(input: bytes) -> list[Message]:
    """The caller's conversation; a bad shape is the skill's `invalid input` with a serde-like reason."""
    value = json.loads(input)
    if not isinstance(value, dict):
        raise InvalidInput(f"invalid type: {_kind(value)}, expected struct SkillInput")
    if "messages" not in value:
        raise InvalidInput("missing field `messages`")
    messages = value["messages"]
    if not isinstance(messages, list):
        raise InvalidInput(f"invalid type: {_kind(messages)}, expected a sequence")
    parsed = []
    for message in messages:
        if not isinstance(message, dict):
            raise InvalidInput(f"invalid type: {_kind(message)}, expected struct Message")
        for field in ("role", "content"):
            if field not in message:
                raise InvalidInput(f"missing field `{field}`")
            if not isinstance(message[field], str):
                raise InvalidInput(f"invalid type: {_kind(message[field])}, expected a string")
        if message["role"] not in ROLES:
            raise InvalidInput(f"Invalid role: {message['role']}")
        parsed.append(Message(message["role"], message["content"]))
    return parsed


async def _stream(entry: ChatSkill, csi: Csi, ctx: CsiContext, input: bytes, emit: Emit) -> None:
    messages = [Message("system", entry.system_prompt), *parse_messages(input)]
    await forward_chat_stream(csi, ChatRequest(entry.model, messages), ctx, emit)


def chat_skill(entry: ChatSkill) -> BuiltinSkill:
    """Synthesized per request (never cached, as in PhariaEngine): it holds nothing worth keeping."""
    return BuiltinSkill(entry.name, partial(_stream, entry), IsMessageStream, fixed_metadata=METADATA)
