"""How the embedded index cuts a document into sections, and the words and weights it scores them by."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from semantic_text_splitter import TextSplitter

from skill_engine.csi.types import Modality, TextContent

DEFAULT_CHUNK_SIZE = 1000
DEFAULT_CHUNK_OVERLAP = 0
MAX_CHUNK_SIZE = 100_000

_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """Words as FTS5's `unicode61 remove_diacritics 2` tokenizer sees them: letters and digits, lower-cased,
    without diacritics; order kept, duplicates dropped."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return list(dict.fromkeys(_TOKEN.findall(plain)))


def idf(sections: int, containing: int) -> float:
    return math.log(1 + (sections - containing + 0.5) / (containing + 0.5))


@dataclass(frozen=True)
class IndexConfig:
    chunk_size: int = DEFAULT_CHUNK_SIZE
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP

    def validate(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"`chunk_size` must be between 1 and {MAX_CHUNK_SIZE} characters")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError("`chunk_overlap` must be at least 0 and smaller than `chunk_size`")


@lru_cache(maxsize=32)
def _splitter(config: IndexConfig) -> TextSplitter:
    return TextSplitter(config.chunk_size, overlap=config.chunk_overlap)


def sections_of(contents: Sequence[Modality], config: IndexConfig) -> list[tuple[int, int, str]]:
    """(item, character offset, text) of every section of a document's text items."""
    splitter = _splitter(config)
    return [
        (item, offset, text)
        for item, content in enumerate(contents)
        if isinstance(content, TextContent)
        for offset, text in splitter.chunk_indices(content.text)
    ]
