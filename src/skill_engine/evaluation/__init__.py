"""Evaluation of skills against datasets: parsing, evaluators, runs, storage, reports (docs/evaluation.md)."""
