"""A `pharia:skill@0.4` function skill (world `skill`), built with raw componentize-py from `tests/wit`.

Also built against the 0.5 WIT (same text, other version, `alpha` feature) for the 0.5 tests.
"""

import json
from typing import Any

from wit_world import exports
from wit_world.exports import skill_handler
from wit_world.imports import chunking, language, tool
from wit_world.imports import inference as inf
from wit_world.types import Err, Ok

SCHEMA = {"type": "object", "properties": {"mode": {"type": "string"}}, "required": ["mode"]}


def _params(**overrides: Any) -> inf.ChatParams:
    values: dict[str, Any] = {
        "max_tokens": None,
        "max_completion_tokens": None,
        "temperature": None,
        "top_p": None,
        "frequency_penalty": None,
        "presence_penalty": None,
        "logprobs": inf.Logprobs_No(),
        "tools": None,
        "tool_choice": None,
        "parallel_tool_calls": None,
        "response_format": None,
        "reasoning_effort": None,
    }
    values.update(overrides)
    return inf.ChatParams(**values)


def _message(message: inf.AssistantMessage) -> dict[str, Any]:
    calls = message.tool_calls
    return {
        "content": message.content,
        "reasoning_content": message.reasoning_content,
        "tool_calls": None if calls is None else [[c.id, c.name, c.arguments] for c in calls],
    }


def _run(input: dict[str, Any]) -> Any:
    mode = input.get("mode")
    model = input.get("model", "test-model")
    if mode == "echo":
        return input.get("payload")
    if mode == "chat":
        messages = [inf.Message_Other(inf.OtherMessage("user", input["text"]))]
        (response,) = inf.chat([inf.ChatRequest(model, messages, _params(max_tokens=16))])
        return {**_message(response.message), "finish_reason": response.finish_reason.name.lower()}
    if mode == "tools":
        weather = inf.Function("weather", "The weather in a city", json.dumps(SCHEMA).encode(), True)
        history = [
            inf.Message_Other(inf.OtherMessage("user", "Weather in Paris?")),
            inf.Message_Assistant(
                inf.AssistantMessage(None, "ignored", [inf.ToolCall("call-1", "weather", '{"city":"Paris"}')])
            ),
            inf.Message_Tool(inf.ToolMessage("sunny", "call-1")),
        ]
        params = _params(
            max_completion_tokens=64,
            tools=[weather],
            tool_choice=inf.ToolChoice_Named("weather"),
            parallel_tool_calls=False,
            response_format=inf.ResponseFormat_JsonSchema(inf.JsonSchema("A reply", "reply", b"{}", True)),
            reasoning_effort=inf.ReasoningEffort.LOW,
            logprobs=inf.Logprobs_Sampled(),
        )
        (response,) = inf.chat([inf.ChatRequest(model, history, params)])
        return {**_message(response.message), "finish_reason": response.finish_reason.name.lower()}
    if mode == "complete":
        params = inf.CompletionParams(8, None, None, None, [], False, None, None, inf.Logprobs_No(), True)
        (completion,) = inf.complete([inf.CompletionRequest(model, input["text"], params)])
        return completion.text
    if mode == "completion_stream":
        params = inf.CompletionParams(8, None, None, None, [], False, None, None, inf.Logprobs_No(), False)
        events: list[Any] = []
        with inf.CompletionStream(inf.CompletionRequest(model, input["text"], params)) as stream:
            while (event := stream.next()) is not None:
                if isinstance(event, inf.CompletionEvent_Append):
                    events.append(["append", event.value.text])
                elif isinstance(event, inf.CompletionEvent_End):
                    events.append(["end", event.value.name.lower()])
                else:
                    events.append(["usage", event.value.prompt, event.value.completion])
        return events
    if mode == "invoke_tools":
        requests = [
            tool.InvokeRequest(c["name"], [tool.Argument(k, json.dumps(v).encode()) for k, v in c["args"].items()])
            for c in input["calls"]
        ]
        results: list[Any] = []
        for result in tool.invoke_tool(requests):
            if isinstance(result, Ok):
                results.append({"ok": [m.value for m in result.value]})
            else:
                results.append({"error": result.value})
        return results
    if mode == "list_tools":
        return [[t.name, t.description, json.loads(t.input_schema)] for t in tool.list_tools()]
    if mode == "chunk":
        chunk_params = chunking.ChunkParams(model, 3, 0)
        (plain,) = chunking.chunk([chunking.ChunkRequest(input["text"], chunk_params)])
        (offsets,) = chunking.chunk_with_offsets(
            [chunking.ChunkWithOffsetRequest(input["text"], chunk_params, True)]
        )
        return {
            "chunks": plain,
            "offsets": [[c.text, c.byte_offset, c.character_offset] for c in offsets],
        }
    if mode == "language":
        requests = [language.SelectLanguageRequest(input["text"], ["deu", "eng"])]
        return language.select_language(requests)[0]
    if mode == "internal":
        raise Err(skill_handler.Error_Internal("the 0.4 skill failed"))
    raise Err(skill_handler.Error_InvalidInput(f"unknown mode {mode}"))


class SkillHandler(exports.SkillHandler):
    def run(self, input: bytes) -> bytes:
        return json.dumps(_run(json.loads(input))).encode()

    def metadata(self) -> skill_handler.SkillMetadata:
        return skill_handler.SkillMetadata("A 0.4 test skill", json.dumps(SCHEMA).encode(), b"{}")
