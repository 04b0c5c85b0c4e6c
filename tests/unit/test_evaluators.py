"""Evaluators on known outputs, and the judge's verdict parsing (no engine needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from skill_engine.evaluation.datasets import Example
from skill_engine.evaluation.evaluators import EvaluatorError, build, is_subset, parse_verdict


async def _no_judge(model: str, prompt: str) -> tuple[str, dict[str, int]]:
    raise AssertionError("no judge expected")


def score(spec: Any, output: Any, expected: Any = None, has_expected: bool = True) -> tuple[float, bool, str]:
    (evaluator,) = build([spec])
    result = asyncio.run(evaluator.score(output, Example({}, expected, {}, has_expected), _no_judge))
    return result.score, result.passed, result.reason


@pytest.mark.parametrize(
    ("spec", "output", "expected", "passed"),
    [
        ("exact_match", {"a": 1}, {"a": 1}, True),
        ("exact_match", {"a": 1}, {"a": 1.0}, True),  # JSON has one number type
        ("exact_match", True, 1, False),  # but true is not 1
        ({"type": "exact_match", "field": "a.b.1"}, {"a": {"b": [0, "x"]}}, "x", True),
        (
            {"type": "exact_match", "field": "a"},
            {"a": 2},
            {"a": 2, "other": 3},
            True,
        ),  # path into expected too
        ("json_subset", {"a": 1, "b": [1, {"c": 2, "d": 3}]}, {"b": [1, {"c": 2}]}, True),
        ("json_subset", {"a": 1}, {"a": 1, "b": 2}, False),
        ("json_subset", {"b": [1, 2]}, {"b": [1]}, False),  # arrays match item by item
        ({"type": "regex", "pattern": r"^\d+ apples$"}, "12 apples", None, True),
        ({"type": "regex", "pattern": '"n": 1'}, {"n": 1}, None, True),  # non-strings as JSON text
        ({"type": "numeric", "tolerance": 0.01}, 3.005, 3, True),
        ({"type": "numeric", "tolerance": 0.1, "relative": True}, 109, 100, True),
        ({"type": "numeric", "tolerance": 0.05, "relative": True}, 109, 100, False),
        ({"type": "numeric"}, " 42 ", 42, True),  # numbers written as text count
        ({"type": "numeric"}, "many", 42, False),
        (
            {"type": "json_schema", "schema": {"type": "array", "items": {"type": "integer"}}},
            [1, 2],
            None,
            True,
        ),
        (
            {"type": "json_schema", "schema": {"type": "array", "items": {"type": "integer"}}},
            [1, "2"],
            None,
            False,
        ),
    ],
)
def test_scores_of_known_outputs(spec: Any, output: Any, expected: Any, passed: bool) -> None:
    value, ok, _ = score(spec, output, expected)
    assert ok is passed
    assert value == (1.0 if passed else 0.0)


def test_reasons_say_what_differs() -> None:
    assert score("exact_match", {"a": 2}, {"a": 1})[2] == 'expected {"a": 1}, got {"a": 2}'
    assert (
        score({"type": "exact_match", "field": "x"}, {"a": 2}, 1)[2]
        == "the output has no field `x` (missing step 'x')"
    )
    assert (
        score("exact_match", 1, has_expected=False)[2]
        == "the example has no `expected` value for `exact_match`"
    )
    schema = {"type": "json_schema", "schema": {"properties": {"n": {"type": "integer"}}}}
    assert score(schema, {"n": "x"})[2] == "at n: 'x' is not of type 'integer'"


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ('{"score": 0.7, "reason": "ok"}', (0.7, "ok")),
        ('Sure! ```json\n{"score": 1, "reason": "right"}\n```', (1.0, "right")),
        ('{"score": 3, "reason": "over"}', (1.0, "over")),  # clipped into [0, 1]
        ('{"score": -1}', (0.0, "")),
    ],
)
def test_judge_verdicts(answer: str, verdict: tuple[float, str]) -> None:
    assert parse_verdict(answer) == verdict


@pytest.mark.parametrize("answer", ["no idea", '{"score": "high"}', '{"score": true}', "{not json}"])
def test_answers_that_are_not_verdicts_score_nothing(answer: str) -> None:
    value, reason = parse_verdict(answer)
    assert value is None
    assert reason.startswith("the judge's answer ")


def test_the_judge_sees_rubric_input_expected_and_output() -> None:
    prompts: list[tuple[str, str]] = []

    async def judge(model: str, prompt: str) -> tuple[str, dict[str, int]]:
        prompts.append((model, prompt))
        return '{"score": 0.4, "reason": "meh"}', {"prompt": 5, "completion": 2, "total": 7}

    (evaluator,) = build([{"type": "llm_judge", "model": "m", "rubric": "Be fair.", "threshold": 0.5}])
    result = asyncio.run(evaluator.score({"answer": 41}, Example({"q": "6*7"}, 42, {}, True), judge))
    assert (result.score, result.passed, result.reason, result.tokens) == (
        0.4,
        False,
        "meh",
        {"prompt": 5, "completion": 2, "total": 7},
    )
    ((model, prompt),) = prompts
    assert model == "m"
    for part in (
        "Rubric:\nBe fair.",
        'Input given to the skill:\n{"q": "6*7"}',
        "Expected output (may be empty):\n42",
        'Actual output:\n{"answer": 41}',
    ):
        assert part in prompt


def test_is_subset_nesting() -> None:
    assert is_subset({}, {"anything": 1})
    assert not is_subset({"a": None}, {})
    assert is_subset([{"a": 1}], [{"a": 1, "b": 2}])


@pytest.mark.parametrize(
    ("specs", "text"),
    [
        ("exact_match", "`evaluators` must be a non-empty list."),
        ([{"pattern": "x"}], 'Each evaluator is a type name or an object with a `"type"`.'),
        (
            [{"type": "llm_judge", "model": "m", "rubric": "r", "threshold": 2}],
            "Evaluator `llm_judge`: `threshold` must be a number from 0 to 1.",
        ),
        ([{"type": "exact_match", "field": 3}], "Evaluator `exact_match`: `field` must be a string."),
        ([{"type": "numeric", "relative": "yes"}], "Evaluator `numeric`: `relative` must be true or false."),
    ],
)
def test_bad_configurations(specs: Any, text: str) -> None:
    with pytest.raises(EvaluatorError) as raised:
        build(specs)
    assert str(raised.value) == text


def test_two_of_a_kind_with_names() -> None:
    evaluators = build(
        [
            {"type": "llm_judge", "model": "a", "rubric": "r"},
            {"type": "llm_judge", "model": "b", "rubric": "r", "name": "judge-b"},
        ]
    )
    assert [e.name for e in evaluators] == ["llm_judge", "judge-b"]
