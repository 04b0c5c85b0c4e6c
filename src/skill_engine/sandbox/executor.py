"""Runs LLM-written Python in a fresh instance of the sandbox component, on the engine's wasm runtime.

Each call gets its own Store (memory limit `CODE_EXECUTION_MEMORY`), its own `Invocation` (deadline
`CODE_EXECUTION_TIMEOUT`, enforced at epoch ticks like a skill's, covering the tool calls it makes) and a
WASI context without files, network or environment. Whatever the program does, the caller gets an
`Outcome`; a trap (timeout, memory, stack) becomes an error outcome, never an exception of the engine.
Code-mode tool calls are host calls of the instance and take the path of a skill's `invoke-tool`.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component, Linker, Variant

from skill_engine.csi import CsiContext
from skill_engine.csi.errors import CsiError
from skill_engine.csi.tool_names import EXECUTE_PYTHON
from skill_engine.csi.tools import Tools
from skill_engine.csi.types import InvokeRequest, ToolArgument, ToolOutput
from skill_engine.runtime import bindings, wasmtime_fixes
from skill_engine.runtime.compiler import Compiler
from skill_engine.runtime.engine import CHECK_TICKS
from skill_engine.runtime.invocation import CANCELLED_MESSAGE, TIMEOUT_MESSAGE, Invocation
from skill_engine.sandbox import build

log = logging.getLogger("skill_engine.sandbox")

HOST_INTERFACE = "skill-engine:sandbox/host@0.1.0"
CODE_INTERFACE = "skill-engine:sandbox/code@0.1.0"
_GRACE = 0.2
"""Seconds past the deadline before the caller stops waiting for a guest blocked in WASI."""


@dataclass(frozen=True)
class Limits:
    timeout: float = 10.0
    memory: int = 256 * 1024 * 1024
    output: int = 64 * 1024
    """Characters kept of stdout and of stderr each; the rest is replaced by a marker."""
    concurrency: int = 4


@dataclass
class Outcome:
    """What a program did: the JSON shape `execute_python` returns."""

    stdout: str = ""
    stderr: str = ""
    result: Any = None
    error: dict[str, str] | None = None

    @classmethod
    def failure(cls, kind: str, message: str) -> Outcome:
        return cls(error={"type": kind, "message": message, "traceback": ""})

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {"stdout": self.stdout, "stderr": self.stderr, "result": self.result, "error": self.error}


class CodeSandbox:
    """The `execute_python` engine: one component, many short-lived instances."""

    def __init__(
        self, engine: wasmtime.Engine, tools: Tools, compiler: Compiler, directory: Path, limits: Limits
    ) -> None:
        self.engine = engine
        self.tools = tools
        self.compiler = compiler
        self.directory = directory
        self.limits = limits
        self.linker = Linker(engine)
        self.linker.add_wasip2()
        with self.linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
            host.add_func("call-tool", self._call_tool)
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._executor = ThreadPoolExecutor(max_workers=limits.concurrency, thread_name_prefix="sandbox")
        self._preparing: asyncio.Task[Component] | None = None
        self.in_flight: set[Invocation] = set()

    # -- preparation ---------------------------------------------------------------------------------

    def prepare(self) -> asyncio.Task[Component]:
        """Builds (once per guest version), compiles and loads the component in the background."""
        if self._preparing is None or (self._preparing.done() and self._preparing.exception() is not None):
            self._preparing = asyncio.get_running_loop().create_task(self._prepare())
        return self._preparing

    async def _prepare(self) -> Component:
        wasm = await build.build(self.directory)
        artifact = await self.compiler.compiled(wasm.read_bytes(), "code sandbox")
        component = await asyncio.to_thread(Component.deserialize_file, self.engine, str(artifact))
        log.info("code sandbox ready")
        return component

    async def close(self) -> None:
        for invocation in list(self.in_flight):
            invocation.stop("The engine is shutting down.")
        if self._preparing is not None and not self._preparing.done():
            self._preparing.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- execution -----------------------------------------------------------------------------------

    async def execute(self, code: str, input: Any, ctx: CsiContext) -> Outcome:
        """Runs `code` with `input` for the caller `ctx` (whose namespace's tools it may call)."""
        try:
            component = await asyncio.shield(self.prepare())
        except Exception as e:
            log.error("the code sandbox is not available: %s", e)
            return Outcome.failure("SandboxUnavailable", f"The code sandbox is not available: {e}")
        await self._slots.acquire()
        loop = asyncio.get_running_loop()
        invocation = Invocation(loop, ctx, self.limits.timeout)
        self.in_flight.add(invocation)
        options = json.dumps({"output-limit": self.limits.output})
        arguments = (code, json.dumps(input), options)
        try:
            run_in_context = contextvars.copy_context().run
            future = loop.run_in_executor(
                self._executor, run_in_context, self._instance, component, invocation, arguments
            )
        except BaseException:
            self._finished(invocation)
            raise
        future.add_done_callback(lambda _: self._finished(invocation))
        future.add_done_callback(_consume_outcome)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.limits.timeout + _GRACE)
        except TimeoutError:
            invocation.stop(TIMEOUT_MESSAGE)
            log.warning("code execution abandoned at its deadline (guest blocked)")
            return self._timeout()
        except asyncio.CancelledError:
            invocation.stop(CANCELLED_MESSAGE)
            raise

    def _finished(self, invocation: Invocation) -> None:
        self.in_flight.discard(invocation)
        self._slots.release()

    def _timeout(self) -> Outcome:
        return Outcome.failure(
            "TimeoutError",
            f"The program ran longer than the time limit of {self.limits.timeout:g} s and was stopped.",
        )

    def _instance(
        self, component: Component, invocation: Invocation, arguments: tuple[str, str, str]
    ) -> Outcome:
        """On a worker thread: a fresh store and instance, one call of `run`, a trap mapped to an outcome."""
        invocation.started = True
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasmtime.WasiConfig())  # no preopens, no env, no args, no network, no stdin
        store.set_limits(memory_size=self.limits.memory)
        keepalive = wasmtime_fixes.set_epoch_deadline_callback(store, invocation.epoch_check, CHECK_TICKS)
        store.set_epoch_deadline(CHECK_TICKS)
        bindings.bind_invocation(invocation)
        try:
            instance = self.linker.instantiate(store, component)
            interface = component.get_export_index(CODE_INTERFACE)
            run = instance.get_func(store, component.get_export_index("run", interface))
            if run is None:
                return Outcome.failure("SandboxError", "The sandbox component exports no `run`.")
            raw = run(store, *arguments)
            data = json.loads(raw)
            return Outcome(data["stdout"], data["stderr"], data["result"], data["error"])
        except Exception as e:
            return self._trapped(e, invocation)
        finally:
            bindings.bind_invocation(None)
            store.close()
            del keepalive

    def _trapped(self, error: Exception, invocation: Invocation) -> Outcome:
        text = str(error)
        if invocation.stop_reason == TIMEOUT_MESSAGE:
            return self._timeout()
        if invocation.stop_reason is not None:
            return Outcome.failure("Cancelled", invocation.stop_reason)
        if invocation.csi_error is not None:
            return Outcome.failure("ToolCallFailed", str(invocation.csi_error))
        if "memory" in text and ("limit" in text or "out of bounds" in text or "unreachable" in text):
            return self._memory()
        if "unreachable" in text:
            # CPython aborts (an `unreachable` trap) when an allocation fails where it cannot raise.
            return self._memory()
        if "call stack exhausted" in text or "stack overflow" in text:
            return Outcome.failure("RecursionError", "The program exhausted the sandbox's stack.")
        log.warning("code sandbox trapped: %s", text.splitlines()[0] if text else type(error).__name__)
        first = text.splitlines()[0] if text else type(error).__name__
        return Outcome.failure("SandboxError", f"The sandbox stopped the program: {first}")

    def _memory(self) -> Outcome:
        mib = self.limits.memory / (1024 * 1024)
        return Outcome.failure("MemoryError", f"The program used more than the memory limit of {mib:g} MiB.")

    # -- code mode: a host import, on the worker thread ------------------------------------------------

    def _call_tool(self, _store: Any, name: str, arguments: str) -> Variant:
        invocation = bindings.current()
        if name == EXECUTE_PYTHON:
            return Variant("err", f"{EXECUTE_PYTHON} cannot be called from inside a program.")
        try:
            parsed = json.loads(arguments)
        except ValueError as e:
            return Variant("err", f"The arguments are not JSON: {e}")
        if not isinstance(parsed, dict):
            return Variant("err", "The arguments must be keyword arguments.")
        request = InvokeRequest(name, [ToolArgument(k, json.dumps(v).encode()) for k, v in parsed.items()])
        ctx = invocation.ctx
        try:
            [result] = bindings.call_driver(
                "invoke-tool", self.tools.invoke(ctx.namespace, [request], ctx.token), 1
            )
        except CsiError:
            raise  # recorded on the invocation; the program ends with a ToolCallFailed outcome
        if isinstance(result, ToolOutput):
            return Variant("ok", "\n".join(result.contents))
        return Variant("err", result)


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
