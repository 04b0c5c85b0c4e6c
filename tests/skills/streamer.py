"""A multi-mode message-stream skill used by the engine's tests (`--skill-type message-stream-skill`)."""

from pharia_skill import (
    ChatParams,
    CompletionParams,
    Csi,
    InvokeRequest,
    Message,
    MessageWriter,
    message_stream,
)
from pydantic import BaseModel


class Input(BaseModel):
    mode: str = "messages"
    text: str = "hello"
    model: str = "test-model"


class Payload(BaseModel):
    note: str


@message_stream
def streamer(csi: Csi, writer: MessageWriter[Payload], input: Input) -> None:
    if input.mode == "messages":
        writer.begin_message()
        for word in input.text.split():
            writer.append_to_message(word)
        writer.end_message(Payload(note="first"))
        writer.begin_message()
        writer.append_to_message("second")
        writer.end_message(None)
    elif input.mode == "chat_stream":
        with csi.chat_stream_step(input.model, [Message.user(input.text)], ChatParams(max_tokens=16)) as r:
            writer.forward_response(r)
    elif input.mode == "completion_stream":
        with csi.completion_stream(input.model, input.text, CompletionParams(max_tokens=16)) as r:
            writer.forward_response(r)
    elif input.mode == "write_then_chat":
        writer.begin_message()
        writer.append_to_message("thinking")
        answer = csi.chat(input.model, [Message.user(input.text)], ChatParams(max_tokens=8))
        writer.append_to_message(answer.message.content)
        writer.end_message(None)
    elif input.mode == "tool":
        writer.begin_message()
        results = csi.invoke_tool_concurrent(
            [InvokeRequest("add", {"a": 40, "b": 2}), InvokeRequest("saboteur", {})]
        )
        for result in results:
            writer.append_to_message(result.text() if hasattr(result, "text") else f"error: {result.message}")
        writer.end_message(None)
    elif input.mode == "flood":
        writer.begin_message()
        block = "x" * 65536
        for _ in range(int(input.text)):
            writer.append_to_message(block)
        writer.end_message(None)
    elif input.mode == "raise":
        writer.begin_message()
        writer.append_to_message("partial")
        raise ValueError("failure mid-stream")
    elif input.mode == "end_without_begin":
        writer.end_message(None)
    else:
        raise ValueError(f"unknown mode {input.mode}")
