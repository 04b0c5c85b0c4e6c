"""Calls the text CSI functions (chunking, language, completion, explanation) and returns what it got.

``mode`` selects the call. ``chunk`` and ``chunk_with_offsets`` use the raw WIT bindings so the test sees
exactly what the host returned (the SDK's own ``csi.chunk`` hides byte offsets).
"""

from typing import Any

from pharia_skill import (
    CompletionParams,
    CompletionRequest,
    Csi,
    Granularity,
    Language,
    TopLogprobs,
    skill,
)
from pharia_skill.bindings.imports import chunking as wit_chunking
from pharia_skill.bindings.imports import language as wit_language
from pydantic import BaseModel


class Input(BaseModel):
    mode: str
    text: str = ""
    texts: list[str] = []
    model: str = "test-model"
    max_tokens: int = 3
    overlap: int = 0
    character_offsets: bool = True
    languages: list[str] = ["eng", "deu"]
    target: str = ""
    stop: list[str] = []
    echo: bool = False
    special: bool = False
    top: int = 0


class Output(BaseModel):
    result: Any = None


def _params(input: Input) -> wit_chunking.ChunkParams:
    return wit_chunking.ChunkParams(model=input.model, max_tokens=input.max_tokens, overlap=input.overlap)


@skill
def csi_text(csi: Csi, input: Input) -> Output:
    """Exercises chunking, language selection, completion and explanation."""
    texts = input.texts or [input.text]
    if input.mode == "chunk":
        requests = [wit_chunking.ChunkRequest(text=t, params=_params(input)) for t in texts]
        return Output(result=wit_chunking.chunk(requests))
    if input.mode == "chunk_with_offsets":
        offset_requests = [
            wit_chunking.ChunkWithOffsetRequest(
                text=t, params=_params(input), character_offsets=input.character_offsets
            )
            for t in texts
        ]
        return Output(
            result=[
                [[c.text, c.byte_offset, c.character_offset] for c in chunks]
                for chunks in wit_chunking.chunk_with_offsets(offset_requests)
            ]
        )
    if input.mode == "select_language":
        # Raw WIT, so codes the SDK's `Language` enum does not know reach the host too.
        found = wit_language.select_language(
            [wit_language.SelectLanguageRequest(text=t, languages=input.languages) for t in texts]
        )
        return Output(result=found[0] if len(texts) == 1 and not input.texts else found)
    if input.mode == "select_language_sdk":
        selected = csi.select_language(input.text, [Language(code) for code in input.languages])
        return Output(result=None if selected is None else selected.value)
    if input.mode == "complete":
        params = CompletionParams(
            max_tokens=input.max_tokens,
            stop=input.stop,
            echo=input.echo,
            return_special_tokens=input.special,
            logprobs=TopLogprobs(top=input.top) if input.top else "no",
        )
        completions = csi.complete_concurrent([CompletionRequest(input.model, t, params) for t in texts])
        return Output(
            result=[
                {
                    "text": c.text,
                    "finish_reason": c.finish_reason.value,
                    "usage": [c.usage.prompt, c.usage.completion],
                    "logprobs": [
                        [d.sampled.token.decode(), d.sampled.logprob, [t.token.decode() for t in d.top]]
                        for d in c.logprobs
                    ],
                }
                for c in completions
            ]
        )
    if input.mode == "complete_stream":
        with csi.completion_stream(
            input.model, input.text, CompletionParams(max_tokens=input.max_tokens)
        ) as s:
            appended = [event.text for event in s.stream()]
            return Output(result={"text": appended, "finish_reason": s.finish_reason().value})
    if input.mode == "explain":
        scores = csi.explain(
            input.text, input.target, input.model, Granularity(input.stop[0] if input.stop else "auto")
        )
        return Output(result=[[s.start, s.length, s.score] for s in scores])
    raise ValueError(f"unknown mode {input.mode}")
