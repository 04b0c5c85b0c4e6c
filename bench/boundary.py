"""CPU per crossing of the wasm component boundary: stock wasmtime-py calls vs the engine's (fixes 5 and 6
in runtime/wasmtime_fixes.py), measured alternately in one process.

In process, no HTTP, real components built from tests/skills: `run` is one export call of the probe skill
in echo mode on a fresh instance (instantiation not counted); `stream` is the streamer skill forwarding a
chat stream of `--events` appends: the guest pulls each event through the host import `chat-stream.next`
(`option<chat-event>`) and writes it through `stream-output.write` (`message-item`). The host functions only
hand back events built by the engine's own 0.3 converters. CPU is the calling thread's (guest included).

    .venv/bin/python -m bench.boundary [--rounds 5] [--calls 200] [--events 300]
    .venv/bin/python -m bench.boundary --short      # the smoke run of `make test`

Compiled skills are kept in `WASMTIME_CACHE_DIR` when set (else a temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component, Linker, ResourceHost

from skill_engine.csi.types import ChatAppend, ChatBegin, ChatEnd, FinishReason
from skill_engine.runtime import wasmtime_fixes
from skill_engine.runtime.bindings import CHAT_STREAM_TYPE, COMPLETION_STREAM_TYPE, STREAM_OUTPUT_TYPE
from skill_engine.runtime.bindings.v0_3_convert import from_chat_event
from skill_engine.runtime.boundary import calls as wasm_calls
from skill_engine.runtime.compiler import ArtifactCache, Compiler
from skill_engine.runtime.engine import make_config
from tests.support.linkers import stub_linker
from tests.support.skills import build_skill

HOST_RESOURCES = {
    "chat-stream": CHAT_STREAM_TYPE,
    "completion-stream": COMPLETION_STREAM_TYPE,
    "stream-output": STREAM_OUTPUT_TYPE,
}


class Host:
    """Host imports that answer a chat stream of `events` appends and count what the guest writes."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.pending: Iterator[Any] = iter(())
        self.written = 0

    def chat_stream(self, _store: Any, _request: Any) -> ResourceHost:
        begin = [ChatBegin("assistant")]
        appends = [ChatAppend(f"word{i} ") for i in range(self.events)]
        self.pending = iter([*begin, *appends, ChatEnd(FinishReason.STOP)])
        return ResourceHost.own(1, CHAT_STREAM_TYPE)

    def chat_stream_next(self, store: Any, self_: Any) -> Any:
        self_.to_host(store)  # as the bindings do: a borrow must be released within the call
        return from_chat_event(next(self.pending, None))

    def write(self, store: Any, self_: Any, _item: Any) -> None:
        self_.to_host(store)
        self.written += 1

    def functions(self) -> dict[str, Callable[..., Any]]:
        return {
            "[constructor]chat-stream": self.chat_stream,
            "[method]chat-stream.next": self.chat_stream_next,
            "[method]stream-output.write": self.write,
        }


def unexpected(_store: Any, *_args: Any) -> Any:
    raise RuntimeError("not used by this benchmark")


def linker_for(engine: wasmtime.Engine, component: Component, host: Host) -> Linker:
    functions = host.functions()
    return stub_linker(engine, component, lambda name: functions.get(name, unexpected), HOST_RESOURCES)


def cpu_per_call(
    engine: wasmtime.Engine, component: Component, host: Host, args: Callable[[], tuple[Any, ...]], calls: int
) -> float:
    """Median thread CPU seconds of one `run` export call on a fresh instance."""
    linker = linker_for(engine, component, host)
    handler = next(n for n in component.type.exports(engine) if n.startswith("pharia:skill/"))
    run = component.get_export_index("run", component.get_export_index(handler))
    samples = []
    # As the engine calls it (runtime/runner.py): host functions match their type once per export call.
    scope = (
        wasm_calls.typed_once
        if wasm_calls.one_type_per_import(component.type.imports(engine))
        else nullcontext
    )
    for _ in range(calls):
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 40)
        func = linker.instantiate(store, component).get_func(store, run)
        arguments = args()
        started = time.thread_time()
        with scope():
            func(store, *arguments)
        samples.append(time.thread_time() - started)
        store.close()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternations of stock and engine calls")
    parser.add_argument("--calls", type=int, default=200, help="`run` calls per round and mode")
    parser.add_argument("--events", type=int, default=300, help="chat events per stream")
    parser.add_argument("--short", action="store_true", help="1 round, 5 calls, 20 events (a smoke run)")
    options = parser.parse_args()
    if options.short:
        options.rounds, options.calls, options.events = 1, 5, 20
    wasmtime_fixes.apply()
    engine = wasmtime.Engine(make_config())
    cache_dir = Path(os.environ.get("WASMTIME_CACHE_DIR") or tempfile.mkdtemp(prefix="bench-boundary-"))
    compiler = Compiler(ArtifactCache(cache_dir, 10 * 1024**3))

    def load(wasm: Path) -> Component:
        artifact = asyncio.run(compiler.compiled(wasm.read_bytes(), wasm.stem))
        return Component.deserialize_file(engine, str(artifact))

    probe = load(build_skill("probe"))
    streamer = load(build_skill("streamer", "message-stream-skill"))
    host = Host(options.events)
    workloads: dict[str, Callable[[], float]] = {
        "run (echo export call)": lambda: cpu_per_call(
            engine,
            probe,
            host,
            lambda: (b'{"mode":"echo","payload":{"name":"Homer","n":42}}',),
            options.calls,
        ),
        f"stream ({options.events} events)": lambda: cpu_per_call(
            engine,
            streamer,
            host,
            lambda: (b'{"mode":"chat_stream","text":"hi"}', ResourceHost.own(2, STREAM_OUTPUT_TYPE)),
            max(1, options.calls // 20),
        ),
    }
    modes: dict[str, Callable[[], AbstractContextManager[None]]] = {
        "stock calls": wasmtime_fixes.stock_calls,
        "engine calls": nullcontext,
    }
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(options.rounds):
        for workload, measure in workloads.items():
            for mode, context in modes.items():
                with context():
                    results.setdefault((workload, mode), []).append(measure())
    assert host.written > 0, "the streamer wrote nothing"

    streams = max(1, options.calls // 20)
    print(f"rounds {options.rounds}, {options.calls} run calls and {streams} streams per round and mode")
    print("| workload | stock calls ms | engine calls ms | ratio | µs per stream event |")
    print("|---|---|---|---|---|")
    for workload in workloads:
        stock = statistics.median(results[(workload, "stock calls")]) * 1000
        ours = statistics.median(results[(workload, "engine calls")]) * 1000
        per_event = "-"
        if workload.startswith("stream"):
            per_event = f"{stock / options.events * 1000:.0f} -> {ours / options.events * 1000:.0f}"
        print(f"| {workload} | {stock:.3f} | {ours:.3f} | {ours / stock:.2f}x | {per_event} |")
    print("median thread CPU per call (guest included); ratio = engine calls / stock calls, lower is better")


if __name__ == "__main__":
    main()
