"""`<think>…</think>` reasoning carried inside the content, as reasoning models on Aleph Alpha's chat
endpoint send it when they do not fill `reasoning_content` (engine-spec §4.4, chat v2)."""

from __future__ import annotations

from typing import Literal

OPEN = "<think>"
CLOSE = "</think>"

Part = tuple[Literal["reasoning", "content"], str]


def split_reasoning(content: str | None) -> tuple[str | None, str | None]:
    """(reasoning, content): content starting with `<think>` carries reasoning up to `</think>`."""
    if content is None or not content.startswith(OPEN):
        return None, content
    rest = content[len(OPEN) :]
    end = rest.find(CLOSE)
    if end < 0:
        return rest, None
    return rest[:end], rest[end + len(CLOSE) :]


def _held_back(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that could be the start of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


class ReasoningExtractor:
    """Splits streamed content into reasoning and content parts; tags may arrive split across chunks."""

    def __init__(self) -> None:
        self.state: Literal["start", "reasoning", "content"] = "start"
        self.buffer = ""

    def feed(self, text: str) -> list[Part]:
        parts: list[Part] = []
        self.buffer += text
        if self.state == "start":
            if self.buffer.startswith(OPEN):
                self.state = "reasoning"
                self.buffer = self.buffer[len(OPEN) :]
            elif OPEN.startswith(self.buffer):
                return parts
            else:
                self.state = "content"
        if self.state == "reasoning":
            end = self.buffer.find(CLOSE)
            if end < 0:
                keep = _held_back(self.buffer, CLOSE)
                reasoning, self.buffer = (
                    self.buffer[: len(self.buffer) - keep],
                    self.buffer[len(self.buffer) - keep :],
                )
                if reasoning:
                    parts.append(("reasoning", reasoning))
                return parts
            if end > 0:
                parts.append(("reasoning", self.buffer[:end]))
            self.state = "content"
            self.buffer = self.buffer[end + len(CLOSE) :]
        if self.buffer:
            parts.append(("content", self.buffer))
        self.buffer = ""
        return parts

    def flush(self) -> list[Part]:
        rest, self.buffer = self.buffer, ""
        if not rest:
            return []
        return [("reasoning" if self.state == "reasoning" else "content", rest)]
