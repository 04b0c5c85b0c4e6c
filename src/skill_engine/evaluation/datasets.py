"""Datasets: examples a skill is evaluated against, parsed from JSON lines or CSV.

An upload is all or nothing: the first malformed line is reported with its number and nothing is stored,
so a half-parsed dataset can never be evaluated by accident.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

NDJSON = ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/jsonlines")
CSV = ("text/csv", "application/csv")
_KEYS = {"input", "expected", "metadata"}


@dataclass(frozen=True)
class Example:
    input: Any
    expected: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    has_expected: bool = False

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {"input": self.input}
        if self.has_expected:
            value["expected"] = self.expected
        value["metadata"] = self.metadata
        return value


class DatasetError(ValueError):
    """A dataset upload that cannot be stored; the text names the line and what is wrong."""


def parse_dataset(body: bytes, content_type: str | None, max_examples: int) -> list[Example]:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in CSV:
        examples = _parse_csv(_text(body))
    elif media in NDJSON or media == "":
        examples = _parse_ndjson(_text(body))
    else:
        raise DatasetError(
            f"Unsupported content type `{media}`: "
            "send JSON lines (`application/x-ndjson`) or CSV (`text/csv`)."
        )
    if not examples:
        raise DatasetError("The dataset has no examples.")
    if len(examples) > max_examples:
        raise DatasetError(f"The dataset has {len(examples)} examples; at most {max_examples} are allowed.")
    return examples


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"The dataset is not UTF-8 text: {e}") from None


def _parse_ndjson(text: str) -> list[Example]:
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"Line {number}: invalid JSON: {e.msg} at column {e.colno}.") from None
        examples.append(_example(value, number))
    return examples


def _example(value: Any, number: int) -> Example:
    if not isinstance(value, dict):
        raise DatasetError(f"Line {number}: expected a JSON object with `input`, got {_kind(value)}.")
    if "input" not in value:
        raise DatasetError(f"Line {number}: the example has no `input`.")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        names = ", ".join(f"`{k}`" for k in unknown)
        raise DatasetError(
            f"Line {number}: unknown field(s) {names}; allowed: `input`, `expected`, `metadata`."
        )
    metadata = value.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise DatasetError(f"Line {number}: `metadata` must be a JSON object, got {_kind(metadata)}.")
    return Example(value["input"], value.get("expected"), metadata, "expected" in value)


def _parse_csv(text: str) -> list[Example]:
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    if "input" not in columns:
        raise DatasetError("Line 1: the CSV header needs an `input` column (and optionally `expected`).")
    examples = []
    for row in reader:
        number = reader.line_num
        if None in row:
            raise DatasetError(f"Line {number}: more fields than the header has columns.")
        value: dict[str, Any] = {"input": _cell(row, "input", number)}
        if row.get("expected") not in (None, ""):
            value["expected"] = _cell(row, "expected", number)
        if row.get("metadata") not in (None, ""):
            value["metadata"] = _cell(row, "metadata", number)
        examples.append(_example(value, number))
    return examples


def _cell(row: dict[str, str], column: str, number: int) -> Any:
    try:
        return json.loads(row[column])
    except (json.JSONDecodeError, TypeError) as e:
        raise DatasetError(f"Line {number}: column `{column}` must hold JSON ({e}).") from None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "an object"
