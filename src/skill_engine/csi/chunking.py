"""Chunking (`chunk`, `chunk-with-offsets`): `semantic-text-splitter`, sized in tokens or characters.

Sizes are counted with the model's Hugging Face tokenizer when the inference backend can provide one
(Aleph Alpha: `GET /models/{model}/tokenizer`), otherwise in characters; a tokenizer that cannot be
obtained is never an error (engine-spec §4.5). Splitting is CPU work, so it runs off the event loop.
See docs/csi-text.md for where the current splitter cuts differently from PhariaEngine's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from opentelemetry.util.types import AttributeValue
from semantic_text_splitter import TextSplitter
from tokenizers import Tokenizer

from skill_engine.csi import genai
from skill_engine.csi.calls import CsiContext
from skill_engine.csi.errors import CsiError


@dataclass(frozen=True)
class ChunkParams:
    model: str
    max_tokens: int
    overlap: int = 0


@dataclass(frozen=True)
class ChunkRequest:
    text: str
    params: ChunkParams
    character_offsets: bool = False


@dataclass(frozen=True)
class Chunk:
    text: str
    byte_offset: int
    character_offset: int | None = None


@runtime_checkable
class TokenizerSource(Protocol):
    async def tokenizer(self, model: str, ctx: CsiContext) -> Tokenizer | None:
        """The model's tokenizer, or None if it cannot be obtained (never raises)."""
        ...


def split(request: ChunkRequest, tokenizer: Tokenizer | None) -> list[Chunk]:
    """Chunks of `request.text` with byte offsets (and character offsets if requested)."""
    capacity, overlap = request.params.max_tokens, request.params.overlap
    try:
        if tokenizer is None:
            splitter = TextSplitter(capacity, overlap)
        else:
            splitter = TextSplitter.from_huggingface_tokenizer(tokenizer, capacity, overlap)
    except (ValueError, OverflowError) as e:
        raise CsiError(str(e)) from None
    text = request.text
    chunks: list[Chunk] = []
    characters = 0
    byte_offset = 0
    for character_offset, piece in splitter.chunk_indices(text):
        # Chunk starts never move backwards, so byte offsets accumulate without re-encoding the prefix.
        byte_offset += len(text[characters:character_offset].encode())
        characters = character_offset
        chunks.append(Chunk(piece, byte_offset, character_offset if request.character_offsets else None))
    return chunks


class Chunking:
    """The chunking driver; `tokenizers` is the inference backend when it can serve tokenizers."""

    def __init__(self, tokenizers: TokenizerSource | None = None) -> None:
        self.tokenizers = tokenizers

    async def _tokenizer(self, model: str, ctx: CsiContext) -> Tokenizer | None:
        if self.tokenizers is None:
            return None
        return await self.tokenizers.tokenizer(model, ctx)

    async def _one(self, request: ChunkRequest, ctx: CsiContext) -> list[Chunk]:
        tokenizer = await self._tokenizer(request.params.model, ctx)
        return await asyncio.to_thread(split, request, tokenizer)

    async def chunk_with_offsets(
        self, requests: Sequence[ChunkRequest], ctx: CsiContext
    ) -> list[list[Chunk]]:
        def describe(request: ChunkRequest) -> dict[str, AttributeValue]:
            return {"text_len": len(request.text), "max_tokens": request.params.max_tokens}

        return await genai.batch("chunk", requests, lambda request: self._one(request, ctx), describe)

    async def chunk(self, requests: Sequence[ChunkRequest], ctx: CsiContext) -> list[list[str]]:
        results = await self.chunk_with_offsets(requests, ctx)
        return [[chunk.text for chunk in chunks] for chunks in results]
