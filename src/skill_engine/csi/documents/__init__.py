"""Document drivers: one `Documents` protocol; the Document Index over HTTP or the embedded SQLite index.

Every function is batched: requests run concurrently and results come back in request order; the first
failure ends the invocation (engine-spec §4.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from skill_engine.csi.calls import CsiContext
from skill_engine.csi.errors import CsiError
from skill_engine.csi.types import Document, DocumentPath, Json, SearchRequest, SearchResult

NOT_CONFIGURED = (
    "Document Index is not configured. The Kernel is running without search capabilities. To enable search "
    "capabilities, please ask your operator to configure the Document Index URL in the Kernel configuration."
)


class Documents(Protocol):
    async def search(
        self, requests: Sequence[SearchRequest], ctx: CsiContext
    ) -> list[list[SearchResult]]: ...

    async def documents(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Document]: ...

    async def document_metadata(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Json]: ...

    async def aclose(self) -> None: ...


class NoDocuments:
    """No index at all: every call fails with PhariaEngine's not-configured text."""

    async def search(self, requests: Sequence[SearchRequest], ctx: CsiContext) -> list[list[SearchResult]]:
        raise CsiError(NOT_CONFIGURED)

    async def documents(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Document]:
        raise CsiError(NOT_CONFIGURED)

    async def document_metadata(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Json]:
        raise CsiError(NOT_CONFIGURED)

    async def aclose(self) -> None:
        return None
