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


def _path(path: csi.DocumentPath) -> tuple[str, str, str]:
    return (path.namespace, path.collection, path.name)


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
    if mode == "search":
        index = csi.IndexPath(*input["index"])
        results = csi.search(index, input["query"], input["max_results"], input.get("min_score"))
        return [[list(_path(r.document_path)), r.content, r.score] for r in results]
    if mode == "documents":
        documents = csi.documents([csi.DocumentPath(*path) for path in input["paths"]])
        return [
            {
                "path": list(_path(d.path)),
                "contents": [c.value if isinstance(c, csi.Modality_Text) else "<image>" for c in d.contents],
                "metadata": None if d.metadata is None else json.loads(d.metadata),
            }
            for d in documents
        ]
    if mode == "metadata":
        metadata = csi.document_metadata(csi.DocumentPath(*input["path"]))
        return None if metadata is None else json.loads(metadata)
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
