"""`SqliteIndex`: the embedded document index's storage (SQLite with FTS5) and its search.

Score, in [0, 1] so `min_score` keeps a meaning (docs/decisions/0003-embedded-document-index.md):
`score = Σ idf(t) over query terms the section contains / Σ idf(t) over all query terms`, with
`idf(t) = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))` over the N sections of the index, n_t of which contain t.
1.0 means the section contains every query term; rare terms weigh more than common ones. Sections with the
same score keep FTS5's bm25 order. Candidates are the best 1000 sections by bm25 that pass the filters.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from skill_engine.csi.documents.filters import matches
from skill_engine.csi.documents.sections import IndexConfig, idf, sections_of, tokens
from skill_engine.csi.errors import CsiError
from skill_engine.csi.types import (
    Document,
    DocumentPath,
    ImageContent,
    IndexPath,
    Json,
    Modality,
    SearchRequest,
    SearchResult,
    TextContent,
    TextCursor,
)

DATABASE_FILE = "documents.sqlite3"
SCHEMA_VERSION = 1
CANDIDATES = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    contents TEXT NOT NULL,
    metadata TEXT,
    UNIQUE (namespace, collection, name)
);
CREATE TABLE IF NOT EXISTS indexes (
    id INTEGER PRIMARY KEY,
    namespace TEXT NOT NULL,
    collection TEXT NOT NULL,
    name TEXT NOT NULL,
    chunk_size INTEGER NOT NULL,
    chunk_overlap INTEGER NOT NULL,
    UNIQUE (namespace, collection, name)
);
CREATE TABLE IF NOT EXISTS sections (
    id INTEGER PRIMARY KEY,
    index_id INTEGER NOT NULL,
    document_id INTEGER NOT NULL,
    item INTEGER NOT NULL,
    start INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sections_by_document ON sections (document_id);
CREATE INDEX IF NOT EXISTS sections_by_index ON sections (index_id);
CREATE VIRTUAL TABLE IF NOT EXISTS section_text USING fts5 (text, tokenize = 'unicode61 remove_diacritics 2');
"""


def contents_to_json(contents: Sequence[Modality]) -> list[dict[str, str]]:
    return [
        {"modality": "text", "text": c.text} if isinstance(c, TextContent) else {"modality": "image"}
        for c in contents
    ]


def contents_from_json(value: list[dict[str, str]]) -> list[Modality]:
    return [TextContent(c["text"]) if c["modality"] == "text" else ImageContent() for c in value]


class SqliteIndex:
    """The synchronous store; use it from one thread only."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(directory / DATABASE_FILE, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("PRAGMA busy_timeout = 5000")
        try:
            self.db.executescript(_SCHEMA)
        except sqlite3.OperationalError as e:
            raise RuntimeError(f"the embedded document index needs SQLite with FTS5: {e}") from e
        self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    # -- documents ------------------------------------------------------------------------------------

    def _document_id(self, path: DocumentPath) -> int | None:
        row = self.db.execute(
            "SELECT id FROM documents WHERE namespace = ? AND collection = ? AND name = ?",
            (path.namespace, path.collection, path.name),
        ).fetchone()
        return None if row is None else int(row[0])

    def _drop_sections(self, where: str, value: int) -> None:
        self.db.execute(
            f"DELETE FROM section_text WHERE rowid IN (SELECT id FROM sections WHERE {where} = ?)", (value,)
        )
        self.db.execute(f"DELETE FROM sections WHERE {where} = ?", (value,))

    def _add_sections(
        self, index_id: int, config: IndexConfig, document_id: int, contents: list[Modality]
    ) -> None:
        for item, offset, text in sections_of(contents, config):
            cursor = self.db.execute(
                "INSERT INTO sections (index_id, document_id, item, start) VALUES (?, ?, ?, ?)",
                (index_id, document_id, item, offset),
            )
            self.db.execute("INSERT INTO section_text (rowid, text) VALUES (?, ?)", (cursor.lastrowid, text))

    def _indexes(self, namespace: str, collection: str) -> list[tuple[int, IndexConfig]]:
        rows = self.db.execute(
            "SELECT id, chunk_size, chunk_overlap FROM indexes WHERE namespace = ? AND collection = ?",
            (namespace, collection),
        ).fetchall()
        return [(int(r[0]), IndexConfig(int(r[1]), int(r[2]))) for r in rows]

    def put_document(self, path: DocumentPath, contents: list[Modality], metadata: Json) -> bool:
        """Creates or replaces a document and its sections in every index of its collection; True if new."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            existing = self._document_id(path)
            encoded_contents = json.dumps(contents_to_json(contents), ensure_ascii=False)
            encoded_metadata = None if metadata is None else json.dumps(metadata, ensure_ascii=False)
            if existing is None:
                cursor = self.db.execute(
                    "INSERT INTO documents (namespace, collection, name, contents, metadata) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (path.namespace, path.collection, path.name, encoded_contents, encoded_metadata),
                )
                document_id = int(cursor.lastrowid or 0)
            else:
                document_id = existing
                self.db.execute(
                    "UPDATE documents SET contents = ?, metadata = ? WHERE id = ?",
                    (encoded_contents, encoded_metadata, document_id),
                )
                self._drop_sections("document_id", document_id)
            for index_id, config in self._indexes(path.namespace, path.collection):
                self._add_sections(index_id, config, document_id, contents)
        return existing is None

    def get_document(self, path: DocumentPath) -> Document | None:
        row = self.db.execute(
            "SELECT contents, metadata FROM documents WHERE namespace = ? AND collection = ? AND name = ?",
            (path.namespace, path.collection, path.name),
        ).fetchone()
        if row is None:
            return None
        return Document(
            path, contents_from_json(json.loads(row[0])), None if row[1] is None else json.loads(row[1])
        )

    def delete_document(self, path: DocumentPath) -> bool:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            document_id = self._document_id(path)
            if document_id is None:
                return False
            self._drop_sections("document_id", document_id)
            self.db.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return True

    def list_documents(self, namespace: str, collection: str) -> list[str]:
        rows = self.db.execute(
            "SELECT name FROM documents WHERE namespace = ? AND collection = ? ORDER BY name",
            (namespace, collection),
        ).fetchall()
        return [str(r[0]) for r in rows]

    # -- indexes --------------------------------------------------------------------------------------

    def _index(self, path: IndexPath) -> tuple[int, IndexConfig] | None:
        row = self.db.execute(
            "SELECT id, chunk_size, chunk_overlap FROM indexes "
            "WHERE namespace = ? AND collection = ? AND name = ?",
            (path.namespace, path.collection, path.index),
        ).fetchone()
        return None if row is None else (int(row[0]), IndexConfig(int(row[1]), int(row[2])))

    def get_index(self, path: IndexPath) -> IndexConfig | None:
        found = self._index(path)
        return None if found is None else found[1]

    def put_index(self, path: IndexPath, config: IndexConfig) -> bool:
        """Creates or reconfigures an index and (re)builds its sections; True if new."""
        config.validate()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            found = self._index(path)
            if found is not None and found[1] == config:
                return False
            if found is None:
                cursor = self.db.execute(
                    "INSERT INTO indexes (namespace, collection, name, chunk_size, chunk_overlap) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (path.namespace, path.collection, path.index, config.chunk_size, config.chunk_overlap),
                )
                index_id = int(cursor.lastrowid or 0)
            else:
                index_id = found[0]
                self.db.execute(
                    "UPDATE indexes SET chunk_size = ?, chunk_overlap = ? WHERE id = ?",
                    (config.chunk_size, config.chunk_overlap, index_id),
                )
                self._drop_sections("index_id", index_id)
            rows = self.db.execute(
                "SELECT id, contents FROM documents WHERE namespace = ? AND collection = ?",
                (path.namespace, path.collection),
            ).fetchall()
            for document_id, contents in rows:
                self._add_sections(
                    index_id, config, int(document_id), contents_from_json(json.loads(contents))
                )
        return found is None

    def delete_index(self, path: IndexPath) -> bool:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            found = self._index(path)
            if found is None:
                return False
            self._drop_sections("index_id", found[0])
            self.db.execute("DELETE FROM indexes WHERE id = ?", (found[0],))
        return True

    # -- search ---------------------------------------------------------------------------------------

    def _containing(self, index_id: int, term: str) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM section_text JOIN sections ON sections.id = section_text.rowid "
            "WHERE section_text MATCH ? AND sections.index_id = ?",
            (f'"{term}"', index_id),
        ).fetchone()
        return int(row[0])

    def search(self, request: SearchRequest) -> list[SearchResult]:
        found = self._index(request.index_path)
        if found is None:
            index = request.index_path
            raise CsiError(
                f"Index `{index.index}` does not exist in collection `{index.namespace}/{index.collection}` "
                "of the embedded document index. Create it with "
                f"`PUT /v1/documents/{index.namespace}/{index.collection}/indexes/{index.index}`."
            )
        index_id = found[0]
        terms = tokens(request.query)
        if not terms or request.max_results <= 0:
            return []
        total = int(
            self.db.execute("SELECT count(*) FROM sections WHERE index_id = ?", (index_id,)).fetchone()[0]
        )
        weights = {t: idf(total, self._containing(index_id, t)) for t in terms}
        weight_sum = sum(weights.values())
        filters = request.filters
        if filters:
            self.db.create_function(
                "metadata_matches",
                1,
                lambda raw: matches(None if raw is None else json.loads(raw), filters),
                deterministic=True,
            )
        rows = self.db.execute(
            "SELECT documents.name, documents.metadata, sections.item, sections.start, section_text.text "
            "FROM section_text JOIN sections ON sections.id = section_text.rowid "
            "JOIN documents ON documents.id = sections.document_id "
            "WHERE section_text MATCH ? AND sections.index_id = ?"
            + (" AND metadata_matches(documents.metadata)" if filters else "")
            + " ORDER BY bm25(section_text) LIMIT ?",
            (" OR ".join(f'"{t}"' for t in terms), index_id, max(CANDIDATES, request.max_results)),
        ).fetchall()
        scored: list[SearchResult] = []
        for name, _metadata, item, start, text in rows:
            present = set(tokens(text))
            score = sum(w for t, w in weights.items() if t in present) / weight_sum
            if request.min_score is not None and score < request.min_score:
                continue
            path = request.index_path
            scored.append(
                SearchResult(
                    DocumentPath(path.namespace, path.collection, str(name)),
                    str(text),
                    score,
                    TextCursor(int(item), int(start)),
                    TextCursor(int(item), int(start) + len(text) - 1),
                )
            )
        scored.sort(key=lambda r: -r.score)  # stable: equal scores keep bm25 order
        return scored[: request.max_results]
