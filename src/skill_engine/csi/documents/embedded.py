"""The embedded document index: SQLite with FTS5, used when no `DOCUMENT_INDEX_URL` is configured.

Storage (`documents.sqlite3` in `DOCUMENTS__DIRECTORY`) keeps the Document Index's vocabulary: documents live
in `namespace/collection/name`, an *index* belongs to a collection and says how its documents are cut into
sections (`chunk_size`, `chunk_overlap`, in characters). Every text item of a document is split into
sections of at most `chunk_size` characters with `semantic-text-splitter` (sentence and word boundaries
first); a search returns sections with cursors `{item, position}` (characters, both ends inclusive).

All database work runs on one dedicated thread, never on the event loop. Modules: `sections` (cutting and
scoring words), `sqlite_index` (storage and search, with the score's definition), this one (the driver).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from skill_engine.csi import genai
from skill_engine.csi.calls import CsiContext
from skill_engine.csi.documents.sections import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    IndexConfig,
    idf,
    tokens,
)
from skill_engine.csi.documents.sqlite_index import SqliteIndex, contents_to_json
from skill_engine.csi.errors import CsiError
from skill_engine.csi.types import Document, DocumentPath, Json, SearchRequest, SearchResult

__all__ = [
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_SIZE",
    "EmbeddedDocuments",
    "IndexConfig",
    "SqliteIndex",
    "contents_to_json",
    "idf",
    "tokens",
]

T = TypeVar("T")


def _not_found(path: DocumentPath) -> CsiError:
    return CsiError(
        f"Document `{path.name}` not found in collection `{path.namespace}/{path.collection}` of the "
        "embedded document index."
    )


class EmbeddedDocuments:
    """The `Documents` driver over `SqliteIndex`, opened on first use; one thread does all database work."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents-db")
        self._index: SqliteIndex | None = None

    def _open(self) -> SqliteIndex:
        if self._index is None:
            self._index = SqliteIndex(self.directory)
        return self._index

    async def run(self, work: Callable[[SqliteIndex], T]) -> T:
        """Runs `work` with the store on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: work(self._open()))

    async def search(self, requests: Sequence[SearchRequest], ctx: CsiContext) -> list[list[SearchResult]]:
        async def one(request: SearchRequest) -> list[SearchResult]:
            return await self.run(lambda index: index.search(request))

        return await genai.batch("search", requests, one, genai.search_attributes)

    async def _document(self, path: DocumentPath) -> Document:
        document = await self.run(lambda index: index.get_document(path))
        if document is None:
            raise _not_found(path)
        return document

    async def documents(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Document]:
        return await genai.batch("document", paths, self._document, genai.document_attributes)

    async def document_metadata(self, paths: Sequence[DocumentPath], ctx: CsiContext) -> list[Json]:
        async def one(path: DocumentPath) -> Json:
            return (await self._document(path)).metadata

        return await genai.batch("document_metadata", paths, one, genai.document_attributes)

    async def aclose(self) -> None:
        def close() -> None:
            if self._index is not None:
                self._index.close()
                self._index = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)
