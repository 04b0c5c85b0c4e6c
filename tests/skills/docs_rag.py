"""A retrieval-augmented skill for the document tests: search, fetch documents and metadata, answer.

Built with the official SDK: ``pharia-skill build docs_rag``. Filters come in the Document Index's JSON form
(engine-spec §2.9.1 `Filter`) and are turned into the SDK's filter classes here, so a test can send any
filter through the WIT interface.
"""

import datetime as dt
from typing import Any

from pharia_skill import (
    ChatParams,
    Csi,
    DocumentPath,
    IndexPath,
    Message,
    skill,
)
from pharia_skill.csi.document_index import (
    After,
    AtOrAfter,
    AtOrBefore,
    Before,
    EqualTo,
    GreaterThan,
    GreaterThanOrEqualTo,
    IsNull,
    LessThan,
    LessThanOrEqualTo,
    MetadataFilter,
    SearchRequest,
    Text,
    With,
    WithOneOf,
    Without,
)
from pydantic import BaseModel

CONDITIONS: dict[str, Any] = {
    "greater_than": GreaterThan,
    "greater_than_or_equal_to": GreaterThanOrEqualTo,
    "less_than": LessThan,
    "less_than_or_equal_to": LessThanOrEqualTo,
    "after": After,
    "at_or_after": AtOrAfter,
    "before": Before,
    "at_or_before": AtOrBefore,
    "equal_to": EqualTo,
}
FILTERS: dict[str, Any] = {"with": With, "with_one_of": WithOneOf, "without": Without}


class Query(BaseModel):
    index: list[str]
    query: str
    max_results: int = 3
    min_score: float | None = None
    filters: list[dict[str, Any]] = []


class Input(BaseModel):
    mode: str
    queries: list[Query] = []
    paths: list[list[str]] = []
    model: str | None = None


class Output(BaseModel):
    result: Any = None


def condition(metadata: dict[str, Any]) -> MetadataFilter:
    kind = next(k for k in metadata if k != "field")
    value = metadata[kind]
    if kind == "is_null":
        return MetadataFilter(metadata["field"], IsNull())
    if kind in ("after", "at_or_after", "before", "at_or_before"):
        value = dt.datetime.fromisoformat(value)
    return MetadataFilter(metadata["field"], CONDITIONS[kind](value))


def search_request(query: Query) -> SearchRequest:
    filters = [
        FILTERS[kind]([condition(c["metadata"]) for c in conditions])
        for f in query.filters
        for kind, conditions in f.items()
    ]
    return SearchRequest(IndexPath(*query.index), query.query, query.max_results, query.min_score, filters)


def path(parts: list[str]) -> DocumentPath:
    return DocumentPath(*parts)


@skill
def docs_rag(csi: Csi, input: Input) -> Output:
    """Searches, fetches documents and metadata, and optionally answers with the found passages."""
    if input.mode == "search":
        batches = csi.search_concurrent([search_request(q) for q in input.queries])
        return Output(
            result=[
                [
                    {
                        "path": [r.document_path.namespace, r.document_path.collection, r.document_path.name],
                        "content": r.content,
                        "score": r.score,
                        "start": [r.start.item, r.start.position],
                        "end": [r.end.item, r.end.position],
                    }
                    for r in results
                ]
                for results in batches
            ]
        )
    if input.mode == "documents":
        documents = csi.documents([path(p) for p in input.paths])
        return Output(
            result=[
                {
                    "path": [d.path.namespace, d.path.collection, d.path.name],
                    "contents": [c.text if isinstance(c, Text) else "<image>" for c in d.contents],
                    "metadata": d.metadata,
                }
                for d in documents
            ]
        )
    if input.mode == "metadata":
        return Output(result=csi.documents_metadata([path(p) for p in input.paths]))
    if input.mode == "rag":
        results = csi.search_concurrent([search_request(q) for q in input.queries])[0]
        unique = list(dict.fromkeys(r.document_path for r in results))
        documents = csi.documents(unique)
        metadata = csi.documents_metadata(unique)
        answer = None
        if input.model is not None:
            context = "\n".join(r.content for r in results)
            question = input.queries[0].query
            prompt = f"Answer from the context.\nContext: {context}\nQuestion: {question}"
            answer = csi.chat(input.model, [Message.user(prompt)], ChatParams(max_tokens=64)).message.content
        return Output(
            result={
                "passages": [r.content for r in results],
                "documents": [d.text for d in documents],
                "metadata": metadata,
                "answer": answer,
            }
        )
    raise ValueError(f"unknown mode {input.mode}")
