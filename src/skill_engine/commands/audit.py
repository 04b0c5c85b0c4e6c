"""`skill-engine audit`: answers "which skills touched X, when, for whom" from the audit trail.

Reads `AUDIT_LOG` (or `--file`) and its rotated files, oldest first, and prints the matching records as a
table or as JSON lines (`--json`). Example::

    skill-engine audit --namespace acc --since 1h --touched collection:finance/*
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from skill_engine.config import parse_duration
from skill_engine.governance.audit_log import files

KINDS = {
    "model": "models",
    "collection": "collections",
    "document": "documents",
    "tool": "tools",
    "mcp-server": "mcp_servers",
}


def register(commands: Any) -> None:
    parser = commands.add_parser("audit", help="query the audit trail (AUDIT_LOG)", description=__doc__)
    parser.add_argument("--file", type=Path, help="the audit trail (default: AUDIT_LOG)")
    parser.add_argument("--namespace", help="only this namespace (glob patterns allowed)")
    parser.add_argument("--skill", help="only this skill (glob patterns allowed)")
    parser.add_argument("--subject", help="only this caller (`sub` as the IAM answered, or `anonymous`)")
    parser.add_argument(
        "--kind", help="only this kind: run, message-stream, csi, mcp, evaluation, evaluation-run (globs)"
    )
    parser.add_argument("--evaluation", help="only the records of this evaluation run (its id)")
    parser.add_argument("--since", help="only records newer than a duration (1h, 7d) or an ISO time")
    parser.add_argument(
        "--touched",
        action="append",
        default=[],
        metavar="KIND:PATTERN",
        help=f"only records that touched a matching name; KIND is one of {', '.join(KINDS)} (repeatable)",
    )
    parser.add_argument("--denied", action="store_true", help="only records with a policy denial")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    parser.set_defaults(handler=main)


def _since(value: str) -> datetime:
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError:
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _touched(value: str) -> tuple[str, str]:
    kind, sep, pattern = value.partition(":")
    if not sep or kind not in KINDS or not pattern:
        raise ValueError(f"--touched expects KIND:PATTERN with KIND one of {', '.join(KINDS)}, got {value!r}")
    return KINDS[kind], pattern


def records(path: Path) -> Iterator[dict[str, Any]]:
    for file in files(path):
        with file.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash: skipped, never fatal


def matches(record: dict[str, Any], args: argparse.Namespace, since: datetime | None) -> bool:
    def glob(value: Any, pattern: str | None) -> bool:
        return pattern is None or (isinstance(value, str) and fnmatch.fnmatchcase(value, pattern))

    if not (glob(record.get("namespace"), args.namespace) and glob(record.get("skill"), args.skill)):
        return False
    if args.subject is not None and record.get("subject") != args.subject:
        return False
    if not glob(record.get("kind"), args.kind):
        return False
    if args.evaluation is not None and record.get("evaluation") != args.evaluation:
        return False
    if since is not None:
        try:
            if datetime.fromisoformat(record["time"]) < since:
                return False
        except (KeyError, TypeError, ValueError):
            return False
    if args.denied and not record.get("denials"):
        return False
    for field, pattern in args.touched_patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in record.get(field) or []):
            return False
    return True


COLUMNS = ("time", "namespace", "skill", "subject", "status", "touched")


def _row(record: dict[str, Any]) -> list[str]:
    touched = [f"{kind}:{name}" for kind, field in KINDS.items() for name in record.get(field) or []]
    touched += [f"denied {d.get('kind')}:{d.get('name')}" for d in record.get("denials") or []]
    skill = record.get("skill") or f"({record.get('kind')} {record.get('function') or ''})".replace(" )", ")")
    return [
        str(record.get("time", "")),
        str(record.get("namespace") or "-"),
        skill,
        str(record.get("subject", "")),
        str(record.get("status", "")),
        ", ".join(touched),
    ]


def main(args: argparse.Namespace) -> int:
    path = args.file or (Path(os.environ["AUDIT_LOG"]) if os.environ.get("AUDIT_LOG") else None)
    if path is None:
        print("no audit trail: set AUDIT_LOG or pass --file", file=sys.stderr)
        return 2
    try:
        since = _since(args.since) if args.since else None
        args.touched_patterns = [_touched(t) for t in args.touched]
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    found = [r for r in records(path) if matches(r, args, since)]
    if args.json:
        for record in found:
            print(json.dumps(record, separators=(",", ":")))
        return 0
    rows = [list(COLUMNS), *(_row(r) for r in found)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    print(f"{len(found)} record(s)", file=sys.stderr)
    return 0
