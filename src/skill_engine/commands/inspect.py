"""`skill-engine inspect skill.wasm`: what a skill is and whether this engine would serve it.

Shows the world and WIT version, the kind, description and input/output schemas (from the skill's own
metadata export), the interfaces it imports, its size, and whether it loads here (and the engine's error
text if not). `--json` prints the same as one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "inspect",
        help="describe a skill component: world, WIT version, kind, schemas, imports; would it load here",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("wasm", type=Path, help="the skill component (.wasm) built with the SDK")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from skill_engine.commands.local import CommandError, quiet_logging, stderr

    quiet_logging()
    try:
        report = asyncio.run(_inspect(args.wasm))
    except CommandError as e:
        stderr.print(f"[red]Error:[/red] {e.message}", markup=True, highlight=False)
        return e.status
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print(report)
    return 0 if report["loads"] else 1


def _blank_report(path: Path, exports: list[str], imports: list[str]) -> dict[str, Any]:
    """Every key of the report (`--json` prints them all), filled in as far as inspection gets."""
    return {
        "file": str(path),
        "size": path.stat().st_size,
        "world": None,
        "wit_version": None,
        "kind": None,
        "exports": sorted(exports),
        "imports": imports,
        "loads": False,
        "error": None,
        "description": None,
        "input_schema": None,
        "output_schema": None,
    }


async def _inspect(path: Path) -> dict[str, Any]:
    import wasmtime
    from wasmtime.component import Component

    from skill_engine.commands.local import CommandError, LocalEngine, settings_or_exit
    from skill_engine.csi import CsiContext
    from skill_engine.errors import ExecutionError
    from skill_engine.runtime import worlds

    settings = settings_or_exit()
    local = LocalEngine.create(settings)
    try:
        artifact = await local.compile(path)
        engine = local.runtime.engine
        component = Component.deserialize_file(engine, str(artifact))
        exports = list(component.type.exports(engine))
        imports = sorted(component.type.imports(engine))
        report = _blank_report(path, exports, imports)
        try:
            world = worlds.detect(exports, alpha=True)
        except ExecutionError as e:
            report["error"] = e.message
            return report
        report["world"] = world.export
        report["wit_version"] = world.version
        report["kind"] = "message_stream" if world.interface == worlds.MESSAGE_STREAM else "function"
        if world.line.alpha and not local.runtime.alpha:
            report["error"] = (
                f"{worlds.too_new(world.version)} (served with PHARIA_AI_FEATURE_SET=BETA, as 0.4)"
            )
            return report
        try:
            skill = local.load(artifact)
        except CommandError as e:
            report["error"] = e.message
            return report
        report["loads"] = True
        try:
            metadata = await local.runtime.metadata(skill, CsiContext("dev", path.stem, None))
        except ExecutionError as e:
            report["metadata_error"] = e.message
        else:
            report["description"] = metadata.description
            report["input_schema"] = metadata.input_schema
            report["output_schema"] = metadata.output_schema
        return report
    except wasmtime.WasmtimeError as e:
        raise CommandError(f"Error decoding Wasm component: {e}") from None
    finally:
        await local.aclose()


def _print(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    out = Console(highlight=False, soft_wrap=True)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("File", f"{report['file']} ({report['size']:,} bytes)")
    table.add_row("World", report["world"] or "–")
    table.add_row("WIT version", report["wit_version"] or "–")
    kinds = {"function": "function", "message_stream": "message stream"}
    table.add_row("Kind", kinds.get(report["kind"] or "", "–"))
    if report["description"] is not None:
        table.add_row("Description", report["description"])
    table.add_row("Imports", "\n".join(report["imports"]) or "none")
    loads = "[green]yes[/green]" if report["loads"] else f"[red]no[/red]: {report['error']}"
    table.add_row("Loads here", loads)
    out.print(table)
    if report.get("metadata_error"):
        out.print(f"[yellow]Metadata failed:[/yellow] {report['metadata_error']}")
    for key, title in (("input_schema", "Input schema"), ("output_schema", "Output schema")):
        if report[key] is not None:
            out.print(f"\n[bold]{title}[/bold]")
            out.print(
                Syntax(
                    json.dumps(report[key], indent=2), "json", theme="ansi_dark", background_color="default"
                )
            )
    sys.stdout.flush()
