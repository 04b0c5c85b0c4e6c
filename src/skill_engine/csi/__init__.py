"""The Cognitive System Interface: version-independent drivers a skill reaches through its bindings.

Nothing in here knows about wasm. The bindings of each WIT version convert values and call `Csi`.
"""

from __future__ import annotations

from dataclasses import dataclass

from skill_engine.csi.inference import CsiContext, Inference, NoInference

__all__ = ["Csi", "CsiContext"]


@dataclass
class Csi:
    """All drivers of one engine; later issues add chunking, language, documents and tools here."""

    inference: Inference

    @classmethod
    def without_backends(cls) -> Csi:
        return cls(inference=NoInference())

    async def aclose(self) -> None:
        await self.inference.aclose()
