"""Runs the SDK's `DevCsi` against a live engine and prints what each call returned, as one JSON object.

Not a skill: the engine's tests run it with the skill-build environment's Python (where `pharia-skill`
lives), with `PHARIA_KERNEL_ADDRESS`, `PHARIA_AI_TOKEN` and `OTEL_SDK_DISABLED=true` set. Argument: the
model for inference calls. A failing call records its error text instead of a result.
"""

import json
import sys
from collections.abc import Callable
from typing import Any

from pharia_skill import (
    ChatParams,
    ChunkParams,
    CompletionParams,
    DocumentPath,
    IndexPath,
    Language,
    Message,
)
from pharia_skill.testing import DevCsi


def main() -> None:
    model = sys.argv[1]
    csi = DevCsi(namespace="test-beta")
    results: dict[str, Any] = {}

    def record(name: str, call: Callable[[], Any]) -> None:
        try:
            results[name] = call()
        except Exception as e:  # noqa: BLE001 - the test asserts on the error text
            results[name] = {"error": str(e)}

    def chat() -> Any:
        response = csi.chat(model, [Message.user("hello there")], ChatParams(max_tokens=8))
        usage = [response.usage.prompt, response.usage.completion]
        return [response.message.role.value, response.message.content, response.finish_reason.value, usage]

    def chat_stream() -> Any:
        with csi.chat_stream_step(model, [Message.user("stream this")], ChatParams(max_tokens=8)) as response:
            parts = [event.content for event in response.stream()]
            return [response.role, parts, response.finish_reason().value, response.usage().completion]

    def completion_stream() -> Any:
        with csi.completion_stream(model, "go", CompletionParams(max_tokens=4)) as response:
            parts = [event.text for event in response.stream()]
            return [parts, response.finish_reason().value]

    def search() -> Any:
        found = csi.search(IndexPath("handbook", "policies", "lexical"), "vacation", max_results=2)
        return [[r.document_path.name, r.content, r.start.item, r.end.position] for r in found]

    def documents() -> Any:
        found = csi.documents([DocumentPath("handbook", "policies", "vacation")])
        return [[d.text, d.metadata] for d in found]

    record("chat", chat)
    record("chat_stream", chat_stream)
    record("complete", lambda: csi.complete(model, "Say", CompletionParams(max_tokens=4, stop=["\n"])).text)
    record("completion_stream", completion_stream)
    record("chunk", lambda: [[c.text, c.character_offset] for c in csi.chunk("123456", ChunkParams(model, 3, 2))])
    record(
        "select_language",
        lambda: [
            None if found is None else found.value
            for found in (
                csi.select_language("Ich spreche Deutsch nur ein bisschen.", [Language.English, Language.German]),
                csi.select_language("Parlez-vous français? Non, je ne parle pas français.", [Language.English, Language.German]),
            )
        ],
    )
    record("explain", lambda: [[s.start, s.length] for s in csi.explain("Say hi", " hi", model)])
    record("search", search)
    record("documents", documents)
    record("invoke_tool", lambda: csi.invoke_tool("add", a=1, b=2).text())
    record("list_tools", lambda: [t.name for t in csi.list_tools()])
    record("unknown_model", lambda: csi.complete("unknown", "x", CompletionParams(max_tokens=1)).text)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
