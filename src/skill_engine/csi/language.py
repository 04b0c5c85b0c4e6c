"""Language selection (`select-language`) with lingua, restricted to the caller's ISO 639-3 codes.

Detectors are built lazily, one per language set, and kept in a small LRU. lingua loads its n-gram models
on first use and keeps them process-wide; when a detector is evicted, the models of languages no cached
detector needs any more are unloaded, so memory follows the language sets in recent use. Detection is
CPU-heavy and lingua's model cache is shared, so every lingua call runs on one dedicated worker thread:
the event loop stays free and no detection ever races an unload.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass

from cachetools import LRUCache
from lingua import IsoCode639_3, LanguageDetector, LanguageDetectorBuilder
from opentelemetry.util.types import AttributeValue

from skill_engine.csi import genai
from skill_engine.csi.errors import CsiError

MIN_RELATIVE_DISTANCE = 0.5
MAX_DETECTORS = 8


@dataclass(frozen=True)
class SelectLanguageRequest:
    text: str
    languages: list[str]


def iso_code(code: str) -> IsoCode639_3:
    try:
        return IsoCode639_3.from_str(code)
    except ValueError:
        raise CsiError(f"the language '{code}' is unsupported") from None


class _Detectors(LRUCache[frozenset[IsoCode639_3], LanguageDetector]):
    """Detectors per language set, least recently used leaving first with the models no other one needs."""

    def popitem(self) -> tuple[frozenset[IsoCode639_3], LanguageDetector]:
        evicted, detector = super().popitem()
        unused = evicted - frozenset().union(*self.keys())
        if unused:
            LanguageDetectorBuilder.from_iso_codes_639_3(*unused).build().unload_language_models()  # type: ignore[no-untyped-call]
        return evicted, detector


class Language:
    """The language driver. Needs no credentials."""

    def __init__(self, max_detectors: int = MAX_DETECTORS) -> None:
        self._detectors = _Detectors(max_detectors)
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lingua")

    def _detector(self, codes: frozenset[IsoCode639_3]) -> LanguageDetector:
        detector = self._detectors.get(codes)
        if detector is not None:
            return detector
        detector = (
            LanguageDetectorBuilder.from_iso_codes_639_3(*codes)
            .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
            .build()
        )
        self._detectors[codes] = detector
        return detector

    def _detect(self, text: str, codes: frozenset[IsoCode639_3]) -> str | None:
        language = self._detector(codes).detect_language_of(text)
        return None if language is None else language.iso_code_639_3.name.lower()

    async def _one(self, request: SelectLanguageRequest) -> str | None:
        codes = frozenset(iso_code(code) for code in request.languages)
        if not codes:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._detect, request.text, codes)

    async def select_language(self, requests: Sequence[SelectLanguageRequest]) -> list[str | None]:
        def describe(request: SelectLanguageRequest) -> dict[str, AttributeValue]:
            return {"text_len": len(request.text), "languages": list(request.languages)}

        return await genai.batch("select_language", requests, self._one, describe)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
