"""The span tree of one recorded execution, printed with rich (`skill-engine run --trace`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.tree import Tree

_SHOWN = (
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.tool.name",
    "skill",
    "size",
)


def _label(span: dict[str, Any]) -> str:
    attributes = span["attributes"]
    details = [f"{key.removeprefix('gen_ai.')}={attributes[key]}" for key in _SHOWN if key in attributes]
    status = " [red]error[/red]" if span["status"] == "error" else ""
    extra = f" [dim]{' '.join(details)}[/dim]" if details else ""
    return f"[bold]{span['name']}[/bold] {span['duration_ms']:.1f} ms{status}{extra}"


def print_trace(execution: dict[str, Any], console: Console) -> None:
    spans = execution["spans"]
    children: dict[str | None, list[dict[str, Any]]] = {}
    ids = {span["span_id"] for span in spans}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)
    tree = Tree(f"trace {execution['trace_id']} ({execution['status']}, {execution['duration_ms']:.1f} ms)")

    def add(node: Tree, parent: str | None) -> None:
        for span in children.get(parent, []):
            add(node.add(_label(span)), span["span_id"])

    add(tree, None)
    console.print(tree)
