"""`/v1/datasets` and `/v1/evaluations`: upload examples, evaluate a skill on them, compare two runs.

Errors are plain-text bodies with their status, like every other route of the engine. Storage calls run
on a worker thread. See docs/evaluation.md.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from skill_engine.api.http import HttpError, bearer_token, json_response, json_value, read_body
from skill_engine.evaluation.datasets import DatasetError, parse_dataset
from skill_engine.evaluation.report import compare, summarize
from skill_engine.evaluation.runner import Evaluations, RunError
from skill_engine.evaluation.storage import RUNNING, Run

Handler = Callable[[Request], Awaitable[Response]]
MAX_PAGE = 1000


def _errors(handler: Handler, evaluations: Evaluations) -> Handler:
    """503 while the storage is unreachable; a refused run becomes the engine's one HTTP error."""

    async def wrapped(request: Request) -> Response:
        if evaluations.unavailable is not None:
            raise HttpError(503, evaluations.unavailable)
        try:
            return await handler(request)
        except RunError as e:
            raise HttpError(e.status, e.text) from None

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _page(request: Request, default: int = 100) -> tuple[int, int]:
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", str(default)))
    except ValueError:
        raise HttpError(400, "`offset` and `limit` must be whole numbers.") from None
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise HttpError(400, f"`offset` must be at least 0 and `limit` between 1 and {MAX_PAGE}.")
    return offset, limit


class EvaluationRoutes:
    def __init__(
        self,
        evaluations: Evaluations,
        known_skill: Callable[[str, str], bool],
        max_dataset_bytes: int,
        max_examples: int,
    ) -> None:
        self.evaluations = evaluations
        self.storage = evaluations.storage
        self.known_skill = known_skill
        self.max_dataset_bytes = max_dataset_bytes
        self.max_examples = max_examples

    def routes(self) -> list[Route]:
        return [
            Route("/v1/datasets", _errors(self.upload, self.evaluations), methods=["POST"]),
            Route("/v1/datasets", _errors(self.list_datasets, self.evaluations), methods=["GET"]),
            Route("/v1/datasets/{id}", _errors(self.get_dataset, self.evaluations), methods=["GET"]),
            Route("/v1/datasets/{id}", _errors(self.delete_dataset, self.evaluations), methods=["DELETE"]),
            Route("/v1/evaluations", _errors(self.start, self.evaluations), methods=["POST"]),
            Route("/v1/evaluations", _errors(self.list_runs, self.evaluations), methods=["GET"]),
            Route("/v1/evaluations/compare", _errors(self.compare, self.evaluations), methods=["GET"]),
            Route("/v1/evaluations/{id}", _errors(self.get_run, self.evaluations), methods=["GET"]),
            Route("/v1/evaluations/{id}/results", _errors(self.results, self.evaluations), methods=["GET"]),
            Route("/v1/evaluations/{id}", _errors(self.delete_run, self.evaluations), methods=["DELETE"]),
        ]

    async def upload(self, request: Request) -> Response:
        bearer_token(request)
        name = request.query_params.get("name", "").strip()
        if not name or len(name) > 200:
            raise HttpError(400, "Give the dataset a `name` query parameter (1 to 200 characters).")
        too_large = f"The dataset is larger than {self.max_dataset_bytes} bytes."
        body = await read_body(request, self.max_dataset_bytes, too_large)
        try:
            examples = await asyncio.to_thread(
                parse_dataset, body, request.headers.get("content-type"), self.max_examples
            )
        except DatasetError as e:
            raise HttpError(400, str(e)) from None
        dataset = await asyncio.to_thread(self.storage.add_dataset, name, examples)
        return json_response({"id": dataset.id, "name": dataset.name, "examples": dataset.size}, 201)

    async def list_datasets(self, request: Request) -> Response:
        bearer_token(request)
        datasets = await asyncio.to_thread(self.storage.datasets)
        return json_response([d.to_json() for d in datasets])

    async def get_dataset(self, request: Request) -> Response:
        bearer_token(request)
        dataset_id = request.path_params["id"]
        offset, limit = _page(request)
        dataset = await asyncio.to_thread(self.storage.dataset, dataset_id)
        if dataset is None:
            raise HttpError(404, f"Dataset `{dataset_id}` not found.")
        examples = await asyncio.to_thread(self.storage.examples, dataset_id, offset, limit)
        value = dataset.to_json() | {"offset": offset, "limit": limit}
        value["items"] = [e.to_json() for e in examples]
        return json_response(value)

    async def delete_dataset(self, request: Request) -> Response:
        bearer_token(request)
        dataset_id = request.path_params["id"]
        if not await asyncio.to_thread(self.storage.delete_dataset, dataset_id):
            raise HttpError(404, f"Dataset `{dataset_id}` not found.")
        return Response(status_code=204)

    async def start(self, request: Request) -> Response:
        token = bearer_token(request)
        body = await json_value(request)
        run = await self.evaluations.create(body, token, self.known_skill)
        return json_response({"id": run.id}, 202)

    async def list_runs(self, request: Request) -> Response:
        bearer_token(request)
        runs = await asyncio.to_thread(self.storage.runs)
        return json_response([_brief(run) for run in runs])

    async def _run(self, run_id: str) -> Run:
        run = await asyncio.to_thread(self.storage.run, run_id)
        if run is None:
            raise HttpError(404, f"Evaluation `{run_id}` not found.")
        return run

    async def get_run(self, request: Request) -> Response:
        bearer_token(request)
        run = await self._run(request.path_params["id"])
        results = await asyncio.to_thread(lambda: list(self.storage.iter_results(run.id)))
        return json_response(summarize(run, results))

    async def results(self, request: Request) -> Response:
        bearer_token(request)
        run = await self._run(request.path_params["id"])
        export = request.query_params.get("format", "json")
        if export in ("jsonl", "csv"):
            rows = await asyncio.to_thread(lambda: [r.to_json() for r in self.storage.iter_results(run.id)])
            if export == "jsonl":
                body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
                return Response(body, media_type="application/x-ndjson")
            return StreamingResponse(_csv(rows), media_type="text/csv; charset=utf-8")
        if export != "json":
            raise HttpError(400, "`format` is `json`, `jsonl` or `csv`.")
        offset, limit = _page(request)
        results = await asyncio.to_thread(self.storage.results, run.id, offset, limit)
        return json_response(
            {"id": run.id, "offset": offset, "limit": limit, "items": [r.to_json() for r in results]}
        )

    async def delete_run(self, request: Request) -> Response:
        """A running evaluation is cancelled (its finished results kept); a finished one is deleted."""
        bearer_token(request)
        run = await self._run(request.path_params["id"])
        if run.status == RUNNING and await self.evaluations.cancel(run.id):
            return json_response({"id": run.id, "status": "cancelled"})
        await asyncio.to_thread(self.storage.delete_run, run.id)
        return Response(status_code=204)

    async def compare(self, request: Request) -> Response:
        bearer_token(request)
        a_id, b_id = request.query_params.get("a"), request.query_params.get("b")
        if not a_id or not b_id:
            raise HttpError(400, "Name both evaluations: `?a=<baseline id>&b=<candidate id>`.")
        a, b = await self._run(a_id), await self._run(b_id)
        if a.dataset_id != b.dataset_id:
            raise HttpError(
                400, "The evaluations ran on different datasets; only runs on one dataset compare."
            )
        a_results = await asyncio.to_thread(lambda: list(self.storage.iter_results(a.id)))
        b_results = await asyncio.to_thread(lambda: list(self.storage.iter_results(b.id)))
        return json_response(compare(a, a_results, b, b_results))


def _brief(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "namespace": run.namespace,
        "skill": run.skill,
        "dataset": run.dataset_id,
        "status": run.status,
        "progress": {"done": run.done, "total": run.total},
    }


_CSV_COLUMNS = ("index", "input", "expected", "output", "error", "status", "scores", "latency_ms", "trace_id")


def _csv(rows: list[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row["index"],
                json.dumps(row["input"], ensure_ascii=False),
                json.dumps(row["expected"], ensure_ascii=False) if "expected" in row else "",
                json.dumps(row["output"], ensure_ascii=False) if "output" in row else "",
                row.get("error") or "",
                row["status"],
                json.dumps(row["scores"], ensure_ascii=False),
                row["latency_ms"],
                row["trace_id"] or "",
            ]
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
