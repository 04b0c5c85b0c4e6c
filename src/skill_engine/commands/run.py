"""`skill-engine run skill.wasm '{"topic": "x"}'`: run a skill once, in the same sandbox and with the same
CSI as `serve` (configuration from config.toml, .env and the environment).

The input is the positional JSON, `--input file.json`, or stdin (`-` or nothing given on a pipe). A function
skill's output is printed as JSON; a message stream's text is printed as it streams (reasoning and tool
events on stderr). Failures print the engine's error text on stderr and exit with 1. `--trace` prints the
spans of the execution as a tree afterwards (on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skill_engine.commands.local import LocalEngine

TOKEN_ENV = "SKILL_ENGINE_TOKEN"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "run",
        help="run a skill component once with the CSI configured as for `serve`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("wasm", type=Path, help="the skill component (.wasm)")
    parser.add_argument("input", nargs="?", help="input JSON ('-' or omitted on a pipe: read stdin)")
    parser.add_argument("--input", dest="input_file", type=Path, help="read the input JSON from this file")
    parser.add_argument("--namespace", default="dev", help="namespace the skill runs in (default: dev)")
    parser.add_argument("--name", help="skill name in spans and logs (default: the file name)")
    parser.add_argument(
        "--token", help=f"bearer token the CSI forwards to inference (default: ${TOKEN_ENV})", default=None
    )
    parser.add_argument("--trace", action="store_true", help="print the span tree of the execution")
    parser.set_defaults(handler=main)


def read_input(args: argparse.Namespace) -> bytes:
    from skill_engine.commands.local import CommandError

    if args.input_file is not None:
        if args.input is not None:
            raise CommandError("Give the input either as an argument or with --input, not both.", 2)
        try:
            raw = args.input_file.read_bytes()
        except OSError as e:
            raise CommandError(f"Cannot read {args.input_file}: {e.strerror or e}", 2) from None
    elif args.input == "-" or (args.input is None and not sys.stdin.isatty()):
        raw = sys.stdin.buffer.read()
    elif args.input is None:
        raw = b"{}"
    else:
        raw = args.input.encode()
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CommandError(f"The input is not valid JSON: {e}", 2) from None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def main(args: argparse.Namespace) -> int:
    from skill_engine.commands.local import CommandError, quiet_logging, stderr

    quiet_logging()
    try:
        return asyncio.run(_run(args))
    except CommandError as e:
        sys.stdout.flush()
        stderr.print(f"[red]Error:[/red] {e.message}", markup=True, highlight=False)
        return e.status
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace) -> int:
    from skill_engine import telemetry as telemetry_module
    from skill_engine.commands.local import CommandError, LocalEngine, settings_or_exit, stderr
    from skill_engine.commands.trace import print_trace
    from skill_engine.csi import CsiContext
    from skill_engine.errors import ExecutionError
    from skill_engine.telemetry import Telemetry
    from skill_engine.telemetry.recorder import ExecutionRecorder

    input = read_input(args)
    settings = settings_or_exit()
    recorder = ExecutionRecorder(1) if args.trace else None
    telemetry = Telemetry.create(None, 0.0, settings.otel_gen_ai_content_capture, recorder)
    active = telemetry_module.activate(telemetry)
    local = LocalEngine.create(settings)
    name = args.name or args.wasm.stem
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    ctx = CsiContext(args.namespace, name, token)
    failure: str | None = None
    try:
        execution = telemetry.execution(args.namespace, name)
        try:
            with execution.span():
                with telemetry.span("load_skill", {"skill": f"{args.namespace}/{name}"}):
                    artifact = await local.compile(args.wasm, telemetry)
                    skill = local.load(artifact)
                await _execute(local, skill, input, ctx)
        except ExecutionError as e:
            failure = e.message
        except CommandError as e:
            failure = e.message
    finally:
        await local.aclose()
        telemetry_module.deactivate(active)
        telemetry.shutdown()
    if recorder is not None:
        executions = recorder.executions(limit=1)
        if executions:
            found = recorder.execution(executions[0]["trace_id"])
            if found is not None:
                print_trace(found, stderr)
    if failure is not None:
        raise CommandError(failure)
    return 0


async def _execute(local: LocalEngine, skill: Any, input: bytes, ctx: Any) -> None:
    from skill_engine.api.http import serde_style
    from skill_engine.errors import InvalidOutput
    from skill_engine.metadata import SkillKind

    if skill.kind is SkillKind.MESSAGE_STREAM:
        await _stream(local, skill, input, ctx)
        return
    output = await local.runtime.run(skill, input, ctx)
    try:
        value = json.loads(output)
    except json.JSONDecodeError as e:
        raise InvalidOutput(serde_style(e)) from None
    except UnicodeDecodeError as e:
        raise InvalidOutput(str(e)) from None
    print(json.dumps(value, indent=2, ensure_ascii=False))


async def _stream(local: LocalEngine, skill: Any, input: bytes, ctx: Any) -> None:
    """Prints message text as it arrives; the engine's order checks apply (same error texts)."""
    from skill_engine.commands.local import stderr
    from skill_engine.runtime.stream_output import StreamOutput
    from skill_engine.streaming import (
        MessageAppend,
        MessageEnd,
        MessageStream,
        Reasoning,
        ToolBegin,
        ToolEnd,
        ToolError,
    )

    queue = StreamOutput(8)
    done = object()
    order = MessageStream()

    async def produce() -> None:
        try:
            await local.runtime.run_stream(skill, input, ctx, queue)
        finally:
            queue.close(done)

    producer = asyncio.ensure_future(produce())
    out = sys.stdout
    try:
        while (item := await queue.get()) is not done:
            order.render(item)  # raises the engine's texts for a misordered stream
            if isinstance(item, MessageAppend):
                out.write(item.text)
                out.flush()
            elif isinstance(item, MessageEnd):
                out.write("\n")
                if item.payload is not None:
                    out.write(json.dumps(json.loads(item.payload), ensure_ascii=False) + "\n")
                out.flush()
            elif isinstance(item, Reasoning):
                stderr.print(f"[dim]{item.text}[/dim]", end="", markup=True, highlight=False)
            elif isinstance(item, ToolBegin | ToolEnd):
                kind = "begin" if isinstance(item, ToolBegin) else "end"
                stderr.print(f"[cyan]tool {item.name}: {kind}[/cyan]", markup=True, highlight=False)
            elif isinstance(item, ToolError):
                stderr.print(f"[red]tool {item.name}: {item.message}[/red]", markup=True, highlight=False)
    finally:
        if not producer.done():
            producer.cancel()
    await producer  # raises the skill's error, if any
