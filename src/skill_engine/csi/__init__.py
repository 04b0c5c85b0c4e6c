"""The Cognitive System Interface: version-independent drivers a skill reaches through its bindings.

Nothing in here knows about wasm. The bindings of each WIT version convert values and call `Csi`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skill_engine.csi.calls import CsiContext
from skill_engine.csi.chunking import Chunking
from skill_engine.csi.documents import Documents, NoDocuments
from skill_engine.csi.inference import Inference
from skill_engine.csi.language import Language
from skill_engine.csi.tools import Tools

__all__ = ["Csi", "CsiContext"]


@dataclass
class Csi:
    """All drivers of one engine."""

    inference: Inference
    tools: Tools
    documents: Documents = field(default_factory=NoDocuments)
    chunking: Chunking = field(default_factory=Chunking)
    language: Language = field(default_factory=Language)

    async def aclose(self) -> None:
        await self.inference.aclose()
        await self.documents.aclose()
        self.language.close()
        await self.tools.aclose()
