"""`skill-engine eval`: evaluate a skill on a dataset through a running engine, for people and CI pipelines.

    skill-engine eval --namespace acc --skill summarize --dataset data.jsonl --evaluator json_subset
    skill-engine eval compare <baseline id> <candidate id>

`--dataset` is a file to upload (JSON lines, or CSV by its `.csv` suffix) or the id of a stored dataset;
`--evaluator` is a type name or a JSON object with options, and may be repeated. The command follows the
run with a progress bar, prints the summary table, and exits 1 when `--min-pass-rate` is not met by
every evaluator (2 on usage or connection errors), so a pipeline can gate a release on it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

DEFAULT_URL = "http://127.0.0.1:8081"
FINISHED = ("done", "failed", "cancelled")


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "eval",
        help="evaluate a skill on a dataset through a running engine (or `eval compare A B`)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("compare", nargs="*", metavar="compare A B", help="compare two evaluation runs")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"the engine (default {DEFAULT_URL})")
    parser.add_argument("--token", default=None, help="bearer token (default: $PHARIA_AI_TOKEN)")
    parser.add_argument("--namespace", help="the skill's namespace")
    parser.add_argument("--skill", help="the skill's name")
    parser.add_argument("--dataset", help="a .jsonl/.csv file to upload, or a stored dataset id")
    parser.add_argument(
        "--evaluator", action="append", default=[], help="a type (e.g. exact_match) or JSON with options"
    )
    parser.add_argument("--concurrency", type=int, default=4, help="examples evaluated at once (default 4)")
    parser.add_argument(
        "--min-pass-rate", type=float, default=None, help="exit 1 if an evaluator passes less"
    )
    parser.add_argument(
        "--export", type=Path, default=None, help="write the results to a .jsonl or .csv file"
    )
    parser.add_argument("--no-wait", action="store_true", help="print the run id and return at once")
    parser.set_defaults(handler=main)


class Failure(Exception):
    pass


def main(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    token = args.token or os.environ.get("PHARIA_AI_TOKEN")
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=60) as client:
            if args.compare:
                if len(args.compare) != 3 or args.compare[0] != "compare":
                    raise Failure("usage: skill-engine eval compare <baseline id> <candidate id>")
                return _compare(client, args.compare[1], args.compare[2])
            return _evaluate(client, args, console)
    except Failure as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    except httpx.HTTPError as e:
        console.print(f"[red]error:[/red] cannot reach the engine at {args.url}: {e}")
        return 2


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise Failure(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}"
        )
    return response.json() if response.content else None


def _evaluator(spec: str) -> Any:
    if spec.lstrip().startswith("{"):
        try:
            return json.loads(spec)
        except json.JSONDecodeError as e:
            raise Failure(f"--evaluator {spec!r} is not valid JSON: {e}") from None
    return spec


def _dataset(client: httpx.Client, dataset: str) -> str:
    path = Path(dataset)
    if not path.is_file():
        return dataset  # an id of a stored dataset
    content_type = "text/csv" if path.suffix.lower() == ".csv" else "application/x-ndjson"
    uploaded = _check(
        client.post(
            "/v1/datasets",
            params={"name": path.stem},
            content=path.read_bytes(),
            headers={"content-type": content_type},
        )
    )
    return str(uploaded["id"])


def _evaluate(client: httpx.Client, args: argparse.Namespace, console: Console) -> int:
    for option in ("namespace", "skill", "dataset"):
        if not getattr(args, option):
            raise Failure(f"--{option} is required")
    if not args.evaluator:
        raise Failure("give at least one --evaluator (e.g. --evaluator exact_match)")
    dataset = _dataset(client, args.dataset)
    body = {
        "namespace": args.namespace,
        "skill": args.skill,
        "dataset": dataset,
        "evaluators": [_evaluator(spec) for spec in args.evaluator],
        "concurrency": args.concurrency,
    }
    run_id = _check(client.post("/v1/evaluations", json=body))["id"]
    console.print(f"evaluation [bold]{run_id}[/bold] of {args.namespace}/{args.skill} on dataset {dataset}")
    if args.no_wait:
        print(run_id)
        return 0
    run = _follow(client, run_id, console)
    _print_summary(run)
    if args.export is not None:
        export = "csv" if args.export.suffix.lower() == ".csv" else "jsonl"
        response = client.get(f"/v1/evaluations/{run_id}/results", params={"format": export})
        if response.status_code >= 400:
            _check(response)
        args.export.write_bytes(response.content)
        console.print(f"results written to {args.export}")
    if run["status"] != "done":
        console.print(f"[red]the evaluation {run['status']}[/red]: {run.get('reason') or ''}")
        return 1
    if args.min_pass_rate is not None:
        below = {
            name: values["pass_rate"]
            for name, values in run["summary"].items()
            if values["pass_rate"] is None or values["pass_rate"] < args.min_pass_rate
        }
        if below:
            listed = ", ".join(f"{name} {rate}" for name, rate in below.items())
            console.print(f"[red]pass rate below {args.min_pass_rate}[/red]: {listed}")
            return 1
    return 0


def _follow(client: httpx.Client, run_id: str, console: Console) -> Any:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("evaluating", total=None)
        while True:
            run = _check(client.get(f"/v1/evaluations/{run_id}"))
            progress.update(task, total=run["progress"]["total"], completed=run["progress"]["done"])
            if run["status"] in FINISHED:
                return run
            time.sleep(0.5)


def _print_summary(run: Any) -> None:
    console = Console()
    table = Table(title=f"{run['namespace']}/{run['skill']} — {run['status']}")
    for column in ("evaluator", "mean score", "pass rate", "scored"):
        table.add_column(column)
    for name, values in run["summary"].items():
        table.add_row(name, _fmt(values["mean_score"]), _fmt(values["pass_rate"]), str(values["scored"]))
    console.print(table)
    latency = run["latency_ms"]
    tokens = run["tokens"].get("total", 0)
    console.print(
        f"examples {run['progress']['done']}/{run['progress']['total']}, errors {run['errors']}, "
        f"latency p50 {_fmt(latency['p50'])} ms, p95 {_fmt(latency['p95'])} ms, tokens {tokens}, "
        f"digest {run['digest'] or '-'}"
    )


def _compare(client: httpx.Client, a: str, b: str) -> int:
    result = _check(client.get("/v1/evaluations/compare", params={"a": a, "b": b}))
    console = Console()
    table = Table(title=f"{b} against {a}")
    for column in ("evaluator", "mean score a", "mean score b", "Δ mean", "Δ pass rate"):
        table.add_column(column)
    for name, delta in result["summary"].items():
        table.add_row(
            name,
            _fmt(result["a"]["summary"][name]["mean_score"]),
            _fmt(result["b"]["summary"][name]["mean_score"]),
            _fmt(delta["mean_score"], signed=True),
            _fmt(delta["pass_rate"], signed=True),
        )
    console.print(table)
    for title, rows in (("regressions", result["regressions"]), ("improvements", result["improvements"])):
        console.print(f"{len(rows)} {title}")
        for row in rows[:20]:
            console.print(
                f"  #{row['index']} {_fmt(row['delta'], signed=True)}  input {json.dumps(row['input'])[:80]}"
            )
    return 0


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if signed else f"{value:.3f}"
