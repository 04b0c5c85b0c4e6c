"""A multi-mode function skill used by the engine's tests.

One component covers many behaviours (each build costs ~20 s and each compile ~10 s), selected by
``mode`` in the input. Built with the official SDK: ``pharia-skill build probe``.
"""

import os
import socket
import time
from typing import Any

from pharia_skill import (
    ChatParams,
    ChatRequest,
    CompletionParams,
    Csi,
    Message,
    skill,
)
from pydantic import BaseModel


class Input(BaseModel):
    mode: str
    text: str = ""
    n: int = 0
    model: str = "test-model"
    payload: Any = None


class Output(BaseModel):
    result: Any = None


@skill
def probe(csi: Csi, input: Input) -> Output:
    """A probe skill for the engine's tests."""
    mode = input.mode
    if mode == "echo":
        return Output(result=input.payload)
    if mode == "size":
        return Output(result=len(input.text))
    if mode == "chat":
        params = ChatParams(max_tokens=input.n or 16)
        response = csi.chat(input.model, [Message.user(input.text)], params)
        return Output(result=response.message.content)
    if mode == "chat_concurrent":
        requests = [
            ChatRequest(input.model, [Message.user(f"{input.text} {i}")], ChatParams(max_tokens=8))
            for i in range(input.n)
        ]
        return Output(result=[r.message.content for r in csi.chat_concurrent(requests)])
    if mode == "complete":
        params = CompletionParams(max_tokens=input.n or 16, stop=["\n"])
        return Output(result=csi.complete(input.model, input.text, params).text)
    if mode == "chunk":
        from pharia_skill import ChunkParams

        return Output(result=[c.text for c in csi.chunk(input.text, ChunkParams(input.model, 3))])
    if mode == "raise":
        raise ValueError(f"I never expect to finish: {input.text}")
    if mode == "file":
        try:
            with open(input.text or "/etc/passwd") as f:
                return Output(result={"read": f.read(100)})
        except OSError as e:
            return Output(result={"error": type(e).__name__})
    if mode == "write_file":
        try:
            with open(input.text or "/tmp/skill-engine-probe", "w") as f:
                f.write("escaped")
            return Output(result={"written": True})
        except OSError as e:
            return Output(result={"error": type(e).__name__})
    if mode == "env":
        return Output(result={"environ": dict(os.environ), "cwd": os.getcwd()})
    if mode == "socket":
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(("127.0.0.1", input.n))
            return Output(result={"connected": True})
        except Exception as e:  # noqa: BLE001 - any failure is the expected outcome
            return Output(result={"error": type(e).__name__})
    if mode == "busy":
        x = 0
        while True:
            x += 1
    if mode == "sleep":
        time.sleep(input.n)
        return Output(result="woke up")
    if mode == "alloc":
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))
    if mode == "print":
        for i in range(input.n or 1):
            print(f"{input.text} {i}")
        return Output(result="printed")
    raise ValueError(f"unknown mode {mode}")


_SdkHandler = SkillHandler  # type: ignore[name-defined]  # noqa: F821 - created by @skill


class SkillHandler(_SdkHandler):  # type: ignore[misc,valid-type]
    """Adds a mode the SDK cannot express: output bytes that are not JSON."""

    def run(self, input: bytes) -> bytes:
        if input == b'{"mode":"invalid-output"}':
            return b"{"
        return super().run(input)
