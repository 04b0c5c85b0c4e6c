"""Evaluators: turn one skill output and its example into a score in [0, 1] with a reason.

Each evaluator is configured by a JSON object `{"type": ..., ...options}` (or just its type name) and its
options are checked when a run is created, so a typo is a 400 before any skill runs, not a run full of
errors. Deterministic evaluators pass at a score of 1; `llm_judge` passes at its `threshold`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from skill_engine.evaluation.datasets import Example

TYPES = ("exact_match", "json_subset", "regex", "numeric", "json_schema", "llm_judge")


@dataclass(frozen=True)
class Score:
    score: float
    passed: bool
    reason: str
    tokens: dict[str, int] | None = None
    """Token usage of the evaluator itself (the judge), counted apart from the skill's."""

    def to_json(self, name: str) -> dict[str, Any]:
        value: dict[str, Any] = {"evaluator": name, "score": self.score, "passed": self.passed}
        value["reason"] = self.reason
        if self.tokens is not None:
            value["tokens"] = self.tokens
        return value


Judge = Callable[[str, str], Awaitable[tuple[str, dict[str, int]]]]
"""Asks `model` the prompt; returns the answer text and its token usage (evaluation/judge.py)."""


class EvaluatorError(ValueError):
    """An evaluator configuration that cannot run; the text says which option is wrong."""


def _binary(ok: bool, reason: str) -> Score:
    return Score(1.0 if ok else 0.0, ok, reason)


def at_path(value: Any, path: str | None) -> Any:
    """`a.b.0` walks objects by key and arrays by index; raises KeyError when a step is missing."""
    if not path:
        return value
    for step in path.split("."):
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            raise KeyError(step)
    return value


def is_subset(expected: Any, actual: Any) -> bool:
    """Objects: every expected key present with a matching value; arrays: same length, item by item."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and is_subset(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(is_subset(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return (type(expected) is type(actual) and expected == actual) or _same_number(expected, actual)


def _same_number(a: Any, b: Any) -> bool:
    """1 and 1.0 are the same number in JSON; true is not 1."""
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return isinstance(a, numbers) and isinstance(b, numbers) and a == b


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


class Evaluator:
    """One configured evaluator; `name` tells runs with two of the same type apart."""

    type: str = ""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.field: str | None = self._optional_str("field")
        self.name: str = self._optional_str("name") or self.type

    def _optional_str(self, key: str) -> str | None:
        value = self.options.get(key)
        if value is not None and not isinstance(value, str):
            raise EvaluatorError(f"Evaluator `{self.type}`: `{key}` must be a string.")
        return value

    def _output(self, output: Any) -> Any:
        return at_path(output, self.field)

    def _expected(self, example: Example) -> Any:
        if not example.has_expected:
            raise LookupError(f"the example has no `expected` value for `{self.type}`")
        expected = example.expected
        if self.field and isinstance(expected, dict | list):
            try:
                return at_path(expected, self.field)
            except KeyError:
                return expected
        return expected

    async def score(self, output: Any, example: Example, judge: Judge) -> Score:
        try:
            actual = self._output(output)
        except KeyError as e:
            return _binary(False, f"the output has no field `{self.field}` (missing step {e})")
        try:
            return await self._score(actual, example, judge)
        except LookupError as e:
            return _binary(False, str(e))

    async def _score(self, actual: Any, example: Example, judge: Judge) -> Score:
        raise NotImplementedError


class ExactMatch(Evaluator):
    type = "exact_match"

    async def _score(self, actual: Any, example: Example, judge: Judge) -> Score:
        expected = self._expected(example)
        ok = (type(actual) is type(expected) and actual == expected) or _same_number(actual, expected)
        return _binary(ok, "equal" if ok else f"expected {_as_text(expected)}, got {_as_text(actual)}")


class JsonSubset(Evaluator):
    type = "json_subset"

    async def _score(self, actual: Any, example: Example, judge: Judge) -> Score:
        expected = self._expected(example)
        ok = is_subset(expected, actual)
        return _binary(ok, "expected is contained in the output" if ok else "expected is not contained")


class Regex(Evaluator):
    type = "regex"

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        pattern = options.get("pattern")
        if not isinstance(pattern, str):
            raise EvaluatorError("Evaluator `regex` needs a `pattern` string.")
        try:
            self.pattern = re.compile(pattern)
        except re.error as e:
            raise EvaluatorError(f"Evaluator `regex`: invalid pattern: {e}.") from None

    async def _score(self, actual: Any, example: Example, judge: Judge) -> Score:
        ok = self.pattern.search(_as_text(actual)) is not None
        return _binary(ok, f"{'matches' if ok else 'does not match'} /{self.pattern.pattern}/")


class Numeric(Evaluator):
    type = "numeric"

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        tolerance = options.get("tolerance", 0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
            raise EvaluatorError("Evaluator `numeric`: `tolerance` must be a non-negative number.")
        self.tolerance = float(tolerance)
        self.relative = options.get("relative", False)
        if not isinstance(self.relative, bool):
            raise EvaluatorError("Evaluator `numeric`: `relative` must be true or false.")

    async def _score(self, actual: Any, example: Example, judge: Judge) -> Score:
        expected = self._expected(example)
        a, e = _number(actual), _number(expected)
        if a is None or e is None:
            which = "output" if a is None else "expected value"
            return _binary(False, f"the {which} is not a number")
        allowed = self.tolerance * abs(e) if self.relative else self.tolerance
        ok = math.isclose(a, e, rel_tol=0, abs_tol=allowed) or abs(a - e) <= allowed
        return _binary(ok, f"|{a} - {e}| = {abs(a - e):g} {'<=' if ok else '>'} {allowed:g}")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


class JsonSchema(Evaluator):
    type = "json_schema"

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        schema = options.get("schema")
        if not isinstance(schema, dict):
            raise EvaluatorError("Evaluator `json_schema` needs a `schema` object.")
        validator = jsonschema.validators.validator_for(schema)
        try:
            validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise EvaluatorError(f"Evaluator `json_schema`: invalid schema: {e.message}.") from None
        self.validator = validator(schema)

    async def _score(self, actual: Any, example: Example, judge: Judge) -> Score:
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(actual))
        if error is None:
            return _binary(True, "the output validates")
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return _binary(False, f"at {where}: {error.message}")


JUDGE_PROMPT = """You are grading the output of an AI skill against a rubric.

Rubric:
{rubric}

Input given to the skill:
{input}

Expected output (may be empty):
{expected}

Actual output:
{output}

Answer with one JSON object and nothing else: \
{{"score": <a number from 0 to 1>, "reason": "<one sentence>"}}"""


class LlmJudge(Evaluator):
    type = "llm_judge"

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        model, rubric = options.get("model"), options.get("rubric")
        if not isinstance(model, str) or not model:
            raise EvaluatorError("Evaluator `llm_judge` needs a `model` name.")
        if not isinstance(rubric, str) or not rubric.strip():
            raise EvaluatorError("Evaluator `llm_judge` needs a `rubric` text.")
        threshold = options.get("threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise EvaluatorError("Evaluator `llm_judge`: `threshold` must be a number from 0 to 1.")
        self.model, self.rubric, self.threshold = model, rubric, float(threshold)

    def prompt(self, actual: Any, example: Example) -> str:
        expected = _as_text(example.expected) if example.has_expected else ""
        return JUDGE_PROMPT.format(
            rubric=self.rubric, input=_as_text(example.input), expected=expected, output=_as_text(actual)
        )

    async def _score(self, actual: Any, example: Example, judge: Judge) -> Score:
        answer, tokens = await judge(self.model, self.prompt(actual, example))
        score, reason = parse_verdict(answer)
        if score is None:
            return Score(0.0, False, reason, tokens)
        return Score(score, score >= self.threshold, reason, tokens)


def parse_verdict(answer: str) -> tuple[float | None, str]:
    """The judge's `{"score", "reason"}`, found even when the model wraps it in prose or a code fence."""
    match = re.search(r"\{.*\}", answer, re.DOTALL)
    try:
        verdict = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        verdict = None
    if not isinstance(verdict, dict) or isinstance(verdict.get("score"), bool):
        return None, f"the judge's answer is not a verdict: {answer[:200]!r}"
    score = verdict.get("score")
    if not isinstance(score, int | float) or math.isnan(score):
        return None, f"the judge's answer has no numeric score: {answer[:200]!r}"
    reason = verdict.get("reason")
    return min(1.0, max(0.0, float(score))), reason if isinstance(reason, str) else ""


_CLASSES: dict[str, type[Evaluator]] = {
    cls.type: cls for cls in (ExactMatch, JsonSubset, Regex, Numeric, JsonSchema, LlmJudge)
}


def build(specs: Any) -> list[Evaluator]:
    """Evaluators from a run's `evaluators` list: type names or `{"type": ..., ...options}` objects."""
    if not isinstance(specs, list) or not specs:
        raise EvaluatorError("`evaluators` must be a non-empty list.")
    evaluators = []
    for spec in specs:
        options = {"type": spec} if isinstance(spec, str) else spec
        if not isinstance(options, dict) or not isinstance(options.get("type"), str):
            raise EvaluatorError('Each evaluator is a type name or an object with a `"type"`.')
        cls = _CLASSES.get(options["type"])
        if cls is None:
            known = ", ".join(f"`{t}`" for t in TYPES)
            raise EvaluatorError(f"Unknown evaluator `{options['type']}`; known: {known}.")
        evaluators.append(cls(options))
    names = [e.name for e in evaluators]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise EvaluatorError(f"Two evaluators are named `{duplicate}`: give one a `name`.")
    return evaluators
