"""What a run amounts to: per-evaluator summaries, latency percentiles, token totals, and comparisons.

Computed from the stored results whenever asked, so a summary is always consistent with the results a
client can page through, on whichever replica answers.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from skill_engine.evaluation.storage import Result, Run, _iso


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return round(ordered[index], 3)


def _add(total: dict[str, int], tokens: dict[str, int]) -> None:
    for key, value in tokens.items():
        total[key] = total.get(key, 0) + value


def evaluator_names(run: Run) -> list[str]:
    names = []
    for spec in run.evaluators:
        options = {"type": spec} if isinstance(spec, str) else spec
        names.append(options.get("name") or options["type"])
    return names


def summarize(run: Run, results: Iterable[Result]) -> dict[str, Any]:
    """Mean score over the examples that produced output; pass rate over all finished examples
    (an example whose skill failed counts as not passed)."""
    names = evaluator_names(run)
    scores: dict[str, list[float]] = {name: [] for name in names}
    passed = dict.fromkeys(names, 0)
    latencies: list[float] = []
    tokens: dict[str, int] = {}
    judge_tokens: dict[str, int] = {}
    errors = finished = 0
    for result in results:
        finished += 1
        latencies.append(result.latency_ms)
        _add(tokens, result.tokens)
        _add(judge_tokens, result.judge_tokens)
        if result.error is not None:
            errors += 1
        for score in result.scores:
            scores.setdefault(score["evaluator"], []).append(score["score"])
            passed[score["evaluator"]] = passed.get(score["evaluator"], 0) + bool(score["passed"])
    summary = {
        name: {
            "mean_score": round(statistics.fmean(values), 4) if values else None,
            "pass_rate": round(passed[name] / finished, 4) if finished else None,
            "scored": len(values),
        }
        for name, values in scores.items()
    }
    return {
        "id": run.id,
        "namespace": run.namespace,
        "skill": run.skill,
        "dataset": run.dataset_id,
        "evaluators": run.evaluators,
        "concurrency": run.concurrency,
        "status": run.status,
        "reason": run.reason,
        "progress": {"done": finished, "total": run.total},
        "summary": summary,
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p95": _percentile(latencies, 0.95)},
        "tokens": tokens,
        "judge_tokens": judge_tokens,
        "errors": errors,
        "digest": run.digest,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
    }


def example_score(result: Result) -> float:
    """One number per example: the mean of its evaluators' scores, 0 when the skill failed."""
    if result.error is not None or not result.scores:
        return 0.0
    return statistics.fmean(score["score"] for score in result.scores)


def compare(
    a: Run, a_results: list[Result], b: Run, b_results: list[Result], limit: int = 100
) -> dict[str, Any]:
    """`b` against `a` (the baseline): summary deltas, then the examples whose score fell or rose,
    largest change first."""
    sa, sb = summarize(a, a_results), summarize(b, b_results)
    deltas: dict[str, Any] = {}
    for name in sa["summary"].keys() & sb["summary"].keys():
        deltas[name] = {
            key: _delta(sa["summary"][name][key], sb["summary"][name][key])
            for key in ("mean_score", "pass_rate")
        }
    by_position = {r.position: r for r in a_results}
    changes = []
    for result in b_results:
        before = by_position.get(result.position)
        if before is None:
            continue
        delta = round(example_score(result) - example_score(before), 4)
        if delta != 0:
            changes.append(
                {
                    "index": result.position,
                    "input": result.input,
                    "delta": delta,
                    "a": {
                        "score": round(example_score(before), 4),
                        "scores": before.scores,
                        "error": before.error,
                    },
                    "b": {
                        "score": round(example_score(result), 4),
                        "scores": result.scores,
                        "error": result.error,
                    },
                }
            )
    regressions = sorted((c for c in changes if c["delta"] < 0), key=lambda c: c["delta"])
    improvements = sorted((c for c in changes if c["delta"] > 0), key=lambda c: -c["delta"])
    return {
        "a": sa,
        "b": sb,
        "summary": deltas,
        "latency_ms": {k: _delta(sa["latency_ms"][k], sb["latency_ms"][k]) for k in ("p50", "p95")},
        "tokens": {
            k: sb["tokens"].get(k, 0) - sa["tokens"].get(k, 0)
            for k in sa["tokens"].keys() | sb["tokens"].keys()
        },
        "errors": sb["errors"] - sa["errors"],
        "regressions": regressions[:limit],
        "improvements": improvements[:limit],
    }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 4)
