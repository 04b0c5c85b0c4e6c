"""A `pharia:skill@0.2` function skill (world `skill`, one `csi` import), built with raw componentize-py.

The SDK only targets 0.3, so this is written against the bindings componentize-py generates from
`tests/wit/skill@0.2`. Modes are selected by `mode` in the input.
"""

import json
from typing import Any

from wit_world import exports
from wit_world.exports import skill_handler
from wit_world.imports import csi
from wit_world.types import Err


def _run(input: dict[str, Any]) -> Any:
    mode = input.get("mode")
    if mode == "echo":
        return input.get("payload")
    if mode == "chat":
        messages = [csi.Message(csi.Role.SYSTEM, "Be brief."), csi.Message(csi.Role.USER, input["text"])]
        response = csi.chat(input["model"], messages, csi.ChatParams(16, 0.5, None))
        return {
            "role": response.message.role.name.lower(),
            "content": response.message.content,
            "finish_reason": response.finish_reason.name.lower(),
        }
    if mode == "complete":
        params = csi.CompletionParams(8, None, None, None, ["\n"])
        requests = [csi.CompletionRequest(input["model"], prompt, params) for prompt in input["prompts"]]
        return [c.text for c in csi.complete_all(requests)]
    if mode == "chunk":
        return csi.chunk(input["text"], csi.ChunkParams(input["model"], 3))
    if mode == "language":
        selected = csi.select_language(input["text"], [csi.Language.ENG, csi.Language.DEU])
        return None if selected is None else selected.name.lower()
    if mode == "internal":
        raise Err(skill_handler.Error_Internal("the 0.2 skill failed"))
    if mode == "invalid-input":
        raise Err(skill_handler.Error_InvalidInput("mode must be known"))
    raise Err(skill_handler.Error_InvalidInput(f"unknown mode {mode}"))


class SkillHandler(exports.SkillHandler):
    def run(self, input: bytes) -> bytes:
        data = json.loads(input)
        if data == {"mode": "invalid-output"}:
            return b"{"
        return json.dumps(_run(data)).encode()
