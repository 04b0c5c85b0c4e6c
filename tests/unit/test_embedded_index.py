"""The embedded index's store on its own: sections and cursors, the score formula, filters, persistence."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from skill_engine.csi.documents.embedded import IndexConfig, SqliteIndex, idf, tokens
from skill_engine.csi.documents.filters import filter_from_json, matches
from skill_engine.csi.errors import CsiError
from skill_engine.csi.types import DocumentPath, ImageContent, IndexPath, SearchRequest, TextContent

INDEX = IndexPath("ns", "wiki", "lexical")


def path(name: str) -> DocumentPath:
    return DocumentPath("ns", "wiki", name)


@pytest.fixture
def store(tmp_path: Path) -> SqliteIndex:
    store = SqliteIndex(tmp_path)
    store.put_index(INDEX, IndexConfig(chunk_size=60))
    store.put_document(
        path("heidelberg"),
        [
            TextContent("Heidelberg lies on the river Neckar. Its university is the oldest in Germany."),
            ImageContent(),
            TextContent("The castle ruins tower above the old town."),
        ],
        {"year": 1386, "tags": [{"name": "city"}], "updated": "2024-05-01T10:00:00+00:00"},
    )
    store.put_document(path("paris"), [TextContent("Paris is the capital of France.")], {"year": 508})
    store.put_document(path("notes"), [TextContent("A note about the river Seine in Paris.")], None)
    return store


def search(store: SqliteIndex, query: str, **options: object) -> list[tuple[str, str, float]]:
    request = SearchRequest(INDEX, query, **options)  # type: ignore[arg-type]
    return [(r.document_path.name, r.content, r.score) for r in store.search(request)]


def test_tokens_fold_case_and_diacritics() -> None:
    assert tokens("Élan, élan vital — Straße_42!") == ["elan", "vital", "straße", "42"]


def test_sections_are_bounded_and_cursors_point_into_the_item(store: SqliteIndex) -> None:
    [result] = store.search(SearchRequest(INDEX, "castle", 5))
    assert result.content == "The castle ruins tower above the old town."
    assert (result.start.item, result.start.position) == (2, 0)
    assert (result.end.item, result.end.position) == (2, len(result.content) - 1)
    [first] = store.search(SearchRequest(INDEX, "university", 5))
    text = "Heidelberg lies on the river Neckar. Its university is the oldest in Germany."
    assert len(first.content) <= 60
    assert text[first.start.position : first.end.position + 1] == first.content


def test_score_is_the_idf_weighted_share_of_query_terms(store: SqliteIndex) -> None:
    results = search(store, "river Paris", max_results=5)
    assert results[0] == ("notes", "A note about the river Seine in Paris.", 1.0)
    # 5 sections: "river" is in 2 of them, "paris" in 2; the other matches hold one of the two terms.
    half = idf(5, 2) / (idf(5, 2) + idf(5, 2))
    assert sorted((name, score) for name, _, score in results[1:]) == [("heidelberg", half), ("paris", half)]
    assert all(0 <= score <= 1 for _, _, score in results)


def test_rare_terms_weigh_more(store: SqliteIndex) -> None:
    scores: dict[str, float] = {}
    for name, _, score in search(store, "the castle", max_results=5):
        scores[name] = max(score, scores.get(name, 0.0))
    assert scores["heidelberg"] == 1.0
    assert scores["paris"] < 0.1  # has only "the", which every one of the 5 sections contains
    assert math.isclose(scores["paris"], idf(5, 5) / (idf(5, 5) + idf(5, 1)))


def test_min_score_and_max_results(store: SqliteIndex) -> None:
    assert [name for name, _, _ in search(store, "the castle", max_results=5, min_score=0.9)] == [
        "heidelberg"
    ]
    assert len(search(store, "the", max_results=2)) == 2
    assert search(store, "zeppelin", max_results=5) == []
    assert search(store, "  ...  ", max_results=5) == []


def test_metadata_filters(store: SqliteIndex) -> None:
    def names(*filters: object) -> set[str]:
        request = SearchRequest(INDEX, "the river paris", 10, None, [filter_from_json(f) for f in filters])
        return {r.document_path.name for r in store.search(request)}

    assert names({"with": [{"metadata": {"field": "year", "less_than": 1000}}]}) == {"paris"}
    assert names({"without": [{"metadata": {"field": "year", "is_null": True}}]}) == {"paris", "heidelberg"}
    assert names({"with": [{"metadata": {"field": "tags[].name", "equal_to": "city"}}]}) == {"heidelberg"}
    assert names({"with": [{"metadata": {"field": "updated", "after": "2024-01-01T00:00:00Z"}}]}) == {
        "heidelberg"
    }
    assert names(
        {
            "with_one_of": [
                {"metadata": {"field": "year", "equal_to": 508}},
                {"metadata": {"field": "year", "is_null": True}},
            ]
        }
    ) == {"paris", "notes"}


def test_equal_to_keeps_json_types() -> None:
    bool_filter = filter_from_json({"with": [{"metadata": {"field": "x", "equal_to": True}}]})
    assert matches({"x": True}, [bool_filter])
    assert not matches({"x": 1}, [bool_filter])
    assert not matches({"x": "true"}, [bool_filter])


def test_unknown_index_is_an_error(store: SqliteIndex) -> None:
    with pytest.raises(CsiError, match="Index `other` does not exist in collection `ns/wiki`"):
        store.search(SearchRequest(IndexPath("ns", "wiki", "other"), "x", 1))


def test_replacing_deleting_and_reindexing(store: SqliteIndex) -> None:
    assert not store.put_document(path("paris"), [TextContent("Paris has the Louvre.")], {"year": 508})
    assert search(store, "capital", max_results=5) == []
    assert [name for name, _, _ in search(store, "louvre", max_results=5)] == ["paris"]
    assert store.delete_document(path("paris"))
    assert not store.delete_document(path("paris"))
    assert search(store, "louvre", max_results=5) == []
    assert store.put_index(INDEX, IndexConfig(chunk_size=20, chunk_overlap=5)) is False
    assert all(len(content) <= 20 for _, content, _ in search(store, "the", max_results=50))


def test_data_survives_reopening(store: SqliteIndex, tmp_path: Path) -> None:
    store.close()
    reopened = SqliteIndex(tmp_path)
    assert [name for name, _, _ in search(reopened, "castle", max_results=5)] == ["heidelberg"]
    document = reopened.get_document(path("heidelberg"))
    assert document is not None
    assert document.contents[1] == ImageContent()
    assert document.metadata == {
        "year": 1386,
        "tags": [{"name": "city"}],
        "updated": "2024-05-01T10:00:00+00:00",
    }
