"""Metadata filters: the Document Index JSON form (remote driver, CSI over HTTP) and their evaluation
(embedded index).

JSON form (engine-spec §2.9.1 `Filter`, §4.5): `{"with"|"with_one_of"|"without": [{"metadata": {"field":
"<name>", "<condition>": <value>}}]}`. Field names use the Document Index's path syntax: `a.b` for nested
objects, `a[].b` for any element of an array, `a[1].b` for one element.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, cast

from skill_engine.csi.types import (
    CONDITION_KINDS,
    ConditionKind,
    FilterKind,
    Json,
    MetadataCondition,
    MetadataFilter,
    SearchFilter,
)

FILTER_KINDS: tuple[FilterKind, ...] = ("with", "with_one_of", "without")
_NUMERIC = {"greater_than", "greater_than_or_equal_to", "less_than", "less_than_or_equal_to"}
_TEMPORAL = {"after", "at_or_after", "before", "at_or_before"}


# -- JSON ---------------------------------------------------------------------------------------------


def filter_to_json(search_filter: SearchFilter) -> dict[str, Any]:
    return {
        search_filter.kind: [
            {"metadata": {"field": c.field, c.condition.kind: c.condition.value}}
            for c in search_filter.conditions
        ]
    }


def filter_from_json(value: Any) -> SearchFilter:
    """Parses one filter; a `ValueError` names what is wrong."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError("a filter must be an object with exactly one of `with`, `with_one_of`, `without`")
    kind, conditions = next(iter(value.items()))
    if kind not in FILTER_KINDS:
        raise ValueError(f"unknown filter `{kind}`, expected one of `with`, `with_one_of`, `without`")
    if not isinstance(conditions, list):
        raise ValueError(f"`{kind}` must be a list of metadata filters")
    return SearchFilter(cast(FilterKind, kind), [_metadata_filter_from_json(c) for c in conditions])


def _metadata_filter_from_json(value: Any) -> MetadataFilter:
    inner = value.get("metadata") if isinstance(value, dict) else None
    if not isinstance(inner, dict):
        raise ValueError('a metadata filter must look like {"metadata": {"field": ..., "<condition>": ...}}')
    field_name = inner.get("field")
    if not isinstance(field_name, str):
        raise ValueError("a metadata filter needs a string `field`")
    conditions = [k for k in inner if k != "field"]
    if len(conditions) != 1 or conditions[0] not in CONDITION_KINDS:
        raise ValueError(
            f"a metadata filter needs exactly one condition of {', '.join(CONDITION_KINDS)}; got {conditions}"
        )
    kind = cast(ConditionKind, conditions[0])
    raw = inner[kind]
    return MetadataFilter(field_name, MetadataCondition(kind, _condition_value(kind, raw)))


def _condition_value(kind: ConditionKind, raw: Any) -> float | str | int | bool:
    if kind in _NUMERIC:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"`{kind}` needs a number")
        return float(raw)
    if kind in _TEMPORAL:
        if not isinstance(raw, str):
            raise ValueError(f"`{kind}` needs an ISO-8601 date-time string")
        return raw
    if kind == "equal_to":
        if not isinstance(raw, str | int | bool):
            raise ValueError("`equal_to` needs a string, an integer or a boolean")
        return raw
    if raw is not True:
        raise ValueError("`is_null` must be `true`")
    return True


# -- evaluation ---------------------------------------------------------------------------------------

_MISSING = object()
_PART = re.compile(r"^([^\[\]]*)((?:\[\d*\])*)$")


def field_values(metadata: Json, path: str) -> list[Any]:
    """All values at `path` (several with `[]`); `_MISSING` for paths that lead nowhere."""
    values: list[Any] = [metadata]
    for part in path.split("."):
        match = _PART.match(part)
        if match is None:
            return [_MISSING]
        key, indexes = match.groups()
        step: list[Any] = []
        for value in values:
            if key:
                step.append(value.get(key, _MISSING) if isinstance(value, dict) else _MISSING)
            else:
                step.append(value)
        for index in re.findall(r"\[(\d*)\]", indexes):
            expanded: list[Any] = []
            for value in step:
                if not isinstance(value, list):
                    expanded.append(_MISSING)
                elif index == "":
                    expanded.extend(value)
                else:
                    position = int(index)
                    expanded.append(value[position] if position < len(value) else _MISSING)
            step = expanded
        values = step
    return values


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _holds(condition: MetadataCondition, value: Any) -> bool:
    kind, target = condition.kind, condition.value
    if kind == "is_null":
        return value is None or value is _MISSING
    if value is _MISSING or value is None:
        return False
    if kind in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float) or isinstance(target, str):
            return False
        number, bound = float(value), float(target)
        if math.isnan(number):
            return False
        return {
            "greater_than": number > bound,
            "greater_than_or_equal_to": number >= bound,
            "less_than": number < bound,
            "less_than_or_equal_to": number <= bound,
        }[kind]
    if kind in _TEMPORAL:
        instant, bound_instant = _instant(value), _instant(target)
        if instant is None or bound_instant is None:
            return False
        return {
            "after": instant > bound_instant,
            "at_or_after": instant >= bound_instant,
            "before": instant < bound_instant,
            "at_or_before": instant <= bound_instant,
        }[kind]
    # equal_to: same JSON type and value (true is not 1)
    if isinstance(target, bool) or isinstance(value, bool):
        return isinstance(target, bool) and isinstance(value, bool) and target == value
    if isinstance(target, int):
        return isinstance(value, int | float) and value == target
    return isinstance(value, str) and value == target


def condition_holds(metadata: Json, metadata_filter: MetadataFilter) -> bool:
    """True if any value at the field satisfies the condition (`is_null` also holds for absent fields)."""
    return any(_holds(metadata_filter.condition, v) for v in field_values(metadata, metadata_filter.field))


def matches(metadata: Json, filters: list[SearchFilter]) -> bool:
    """All filters hold: `with` = every condition, `with_one_of` = at least one, `without` = none."""
    for search_filter in filters:
        results = (condition_holds(metadata, c) for c in search_filter.conditions)
        if search_filter.kind == "with" and not all(results):
            return False
        if search_filter.kind == "with_one_of" and not any(results):
            return False
        if search_filter.kind == "without" and any(results):
            return False
    return True
