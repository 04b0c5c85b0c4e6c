"""A `pharia:skill@0.4` message-stream skill (world `message-stream-skill`), built with raw componentize-py."""

import json
from typing import Any

from wit_world import exports
from wit_world.exports import message_stream
from wit_world.imports import inference as inf
from wit_world.imports import streaming_output as out
from wit_world.types import Err


def _begin() -> out.MessageItem:
    return out.MessageItem_MessageBegin(out.BeginAttributes("assistant"))


def _forward(event: Any) -> list[out.MessageItem]:
    if isinstance(event, inf.ChatEvent_MessageBegin):
        return [_begin()]
    if isinstance(event, inf.ChatEvent_Reasoning):
        return [out.MessageItem_Reasoning(event.value)]
    if isinstance(event, inf.ChatEvent_MessageAppend):
        return [out.MessageItem_MessageAppend(event.value.content)]
    if isinstance(event, inf.ChatEvent_ToolCall):
        chunks = [[c.index, c.id, c.name, c.arguments] for c in event.value]
        return [out.MessageItem_MessageAppend(json.dumps(chunks))]
    if isinstance(event, inf.ChatEvent_MessageEnd):
        return [out.MessageItem_MessageEnd(json.dumps({"finish": event.value.name.lower()}).encode())]
    return []


class MessageStream(exports.MessageStream):
    def run(self, input: bytes, output: out.StreamOutput) -> None:
        data = json.loads(input)
        mode = data.get("mode")
        if mode == "reasoning":
            output.write(_begin())
            output.write(out.MessageItem_Reasoning("Let me think."))
            output.write(out.MessageItem_MessageAppend("Answer"))
            output.write(out.MessageItem_MessageEnd(b'{"ok":true}'))
        elif mode == "reasoning_without_begin":
            output.write(out.MessageItem_Reasoning("too early"))
        elif mode == "chat_stream":
            params = inf.ChatParams(
                16, None, None, None, None, None, inf.Logprobs_No(), None, None, None, None, None
            )
            messages = [inf.Message_Other(inf.OtherMessage("user", data["text"]))]
            with inf.ChatStream(inf.ChatRequest(data.get("model", "test-model"), messages, params)) as stream:
                while (event := stream.next()) is not None:
                    for item in _forward(event):
                        output.write(item)
        elif mode == "internal":
            raise Err(message_stream.Error_Internal("the 0.4 stream failed"))
        else:
            raise Err(message_stream.Error_InvalidInput(f"unknown mode {mode}"))
