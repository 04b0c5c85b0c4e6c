"""The language driver: restriction to the given codes, the unsupported-code error, and detectors that
still answer correctly after their models were unloaded by an eviction."""

from __future__ import annotations

import asyncio

import pytest

from skill_engine.csi.errors import CsiError
from skill_engine.csi.language import Language, SelectLanguageRequest

GERMAN = "Ich spreche Deutsch nur ein bisschen."
ENGLISH = "A little bit is better than nothing."


def select(language: Language, text: str, codes: list[str]) -> str | None:
    (found,) = asyncio.run(language.select_language([SelectLanguageRequest(text, codes)]))
    return found


def test_eviction_unloads_and_detection_reloads() -> None:
    language = Language(max_detectors=1)
    try:
        assert select(language, GERMAN, ["eng", "deu"]) == "deu"
        # A second set evicts the first and unloads German, which no cached set needs any more.
        assert select(language, "Je parle un peu français, mais pas bien.", ["fra", "eng"]) == "fra"
        assert select(language, GERMAN, ["deu", "eng"]) == "deu"
        assert select(language, ENGLISH, ["eng", "deu"]) == "eng"
        assert select(language, GERMAN, []) is None
        with pytest.raises(CsiError, match=r"^the language 'xx' is unsupported$"):
            select(language, GERMAN, ["eng", "xx"])
    finally:
        language.close()
