"""Runs skills: a fresh Store and instance per invocation, on a worker thread, under time and memory limits.

Execution model (docs/decisions/0001-execution-model.md): worker threads share one Engine, Linker and
Component; wasm runs without the GIL; host imports wait for their driver coroutine on the event loop. A
busy guest is checked at epoch ticks (timeout, cancellation); a guest blocked inside WASI (`time.sleep`)
cannot be interrupted there, so the awaiting side answers at the deadline while the thread finishes later.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jsonschema
import wasmtime
from wasmtime.component import Component, ExportIndex, Linker, ResourceHost, Variant

from skill_engine.csi import Csi, CsiContext
from skill_engine.csi.errors import CsiError, CsiRefusal
from skill_engine.errors import (
    CsiUseFromMetadata,
    ExecutionError,
    InvalidInput,
    Refused,
    RuntimeFailure,
    SkillLoadError,
    UserCodeError,
)
from skill_engine.governance import audit
from skill_engine.metadata import SkillKind, SkillMetadata
from skill_engine.runtime import bindings, worlds
from skill_engine.runtime.admission import Admission
from skill_engine.runtime.bindings import STREAM_OUTPUT_TYPE, CsiUseOutsideRun, v0_4
from skill_engine.runtime.bindings.v0_2 import Host02
from skill_engine.runtime.bindings.v0_3 import Host03
from skill_engine.runtime.bindings.v0_4 import Host04
from skill_engine.runtime.boundary import calls as wasm_calls
from skill_engine.runtime.budget import ByteBudget
from skill_engine.runtime.engine import WasmEngine
from skill_engine.runtime.handoff import after_hand_over, submit
from skill_engine.runtime.invocation import (
    CANCELLED_MESSAGE,
    HOST_COPY_MESSAGE,
    MEMORY_MESSAGE,
    TIMEOUT_MESSAGE,
    Invocation,
    InvocationStopped,
)
from skill_engine.runtime.spares import Spares
from skill_engine.runtime.stream_output import StreamOutput
from skill_engine.runtime.stuck import StuckGuests

log = logging.getLogger("skill_engine.runtime")

_GRACE = 0.1
_LINK_CHECK_TICKS = 500
"""Epoch ticks (5 s) a load-time instantiation may take (it runs no export, only start functions)."""
"""Seconds past the deadline before the caller stops waiting for a guest that is blocked in WASI."""


@dataclass(frozen=True)
class RunLimits:
    """A namespace's `[namespaces.<ns>.limits]` for one invocation; None falls back to the global one."""

    timeout: float | None = None
    memory: int | None = None
    cpu_time: float | None = None


@dataclass(frozen=True)
class LoadedSkill:
    """A compiled component plus what we learned from its exports."""

    component: Component
    kind: SkillKind
    version: str | None
    """Reported by `/metadata` (e.g. "0.3"); None for worlds without a metadata export."""
    run_index: ExportIndex
    metadata_index: ExportIndex | None
    one_type_per_import: bool = False
    """No two imports are versions of one interface: host calls may reuse their first signature match
    within an export call (`boundary.calls.typed_once`)."""


def inspect_component(engine: wasmtime.Engine, component: Component, alpha: bool = False) -> LoadedSkill:
    """Finds the skill world and WIT version from the component's exports (engine-spec §4.1)."""
    world = worlds.detect(component.type.exports(engine), alpha)
    interface_index = component.get_export_index(world.export)
    run_index = component.get_export_index("run", interface_index)
    if run_index is None:
        raise SkillLoadError(worlds.NOT_A_SKILL_WORLD)
    version = world.line.metadata_version
    typed_once = wasm_calls.one_type_per_import(component.type.imports(engine))
    if world.interface == worlds.MESSAGE_STREAM:
        return LoadedSkill(component, SkillKind.MESSAGE_STREAM, version, run_index, None, typed_once)
    metadata_index = None
    if world.line.has_metadata:
        metadata_index = component.get_export_index("metadata", interface_index)
        if metadata_index is None:
            raise SkillLoadError(worlds.NOT_A_SKILL_WORLD)
    return LoadedSkill(component, SkillKind.FUNCTION, version, run_index, metadata_index, typed_once)


def _valid_schema(raw: bytes) -> Any:
    try:
        schema = json.loads(raw)
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except (ValueError, jsonschema.SchemaError) as e:
        raise UserCodeError(f"Invalid JSON Schema: {e}") from None
    return schema


class WasmRuntime:
    """The sandbox: executes loaded skills with limits, isolated from each other and from the host."""

    def __init__(
        self,
        csi: Csi,
        *,
        timeout: float,
        memory_limit: int,
        max_workers: int = 64,
        admission: Admission | None = None,
        output_limit: int = 50 * 1024 * 1024,
        alpha: bool = False,
        max_stuck: int | None = None,
        input_budget: ByteBudget | None = None,
    ) -> None:
        self.csi = csi
        self.alpha = alpha
        """The `alpha` feature (BETA feature set): serve `pharia:skill@0.5` as 0.4."""
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.admission = admission or Admission(max_workers)
        self.output_limit = output_limit
        self.wasm = WasmEngine()
        self.engine = self.wasm.engine
        # Built once and never changed: instantiating while a linker is being modified fails.
        self.linker = Linker(self.engine)
        self.linker.add_wasip2()
        host03 = Host03(csi)
        lines: list[Host02 | Host03 | Host04] = [Host02(host03), host03, Host04(csi, host03)]
        if alpha:
            lines.append(Host04(csi, host03, v0_4.SEMVER_ALPHA))
        for host in lines:
            host.bind(self.linker)
        self.input_budget = input_budget or ByteBudget(64 * 1024 * 1024)
        self.spares = Spares(self.engine, self.linker)
        self.stuck = StuckGuests(max_workers if max_stuck is None else max_stuck)
        # Room for every slot plus the stuck threads whose slots were given back (runtime/stuck.py).
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers + self.stuck.bound, thread_name_prefix="skill"
        )
        self.in_flight: set[Invocation] = set()
        self.namespace_limits: dict[str, RunLimits] = {}
        self.on_cpu: Callable[[str, float], None] = lambda _namespace, _seconds: None
        """Hears the CPU seconds of every finished invocation (per-namespace metrics)."""

    def stop_all(self, reason: str) -> None:
        """Stops every running invocation (shutdown): busy guests trap, pending host calls are cancelled."""
        for invocation in list(self.in_flight):
            invocation.stop(reason)

    def shutdown_workers(self) -> None:
        """Lets idle worker threads end; called once serving has stopped."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.spares.close()

    def load(self, path: str) -> LoadedSkill:
        """Loads a precompiled artifact (mmap, a few ms) and inspects its world."""
        component = Component.deserialize_file(self.engine, path)
        skill = inspect_component(self.engine, component, self.alpha)
        self._check_imports(component)
        return skill

    def _check_imports(self, component: Component) -> None:
        """Instantiates once without running anything, so a skill importing what the host does not
        provide (e.g. `wasi:http`) fails to load, not at every invocation (wasmtime-py has no pre-instantiate
        for components)."""
        store = wasmtime.Store(self.engine)
        try:
            store.set_wasi(wasmtime.WasiConfig())
            store.set_limits(memory_size=self.memory_limit)
            store.set_epoch_deadline(_LINK_CHECK_TICKS)
            self.linker.instantiate(store, component)
        except wasmtime.WasmtimeError as e:
            raise SkillLoadError(f"Failed to pre-instantiate the component: {e}") from None
        finally:
            store.close()

    async def run(self, skill: LoadedSkill, input: bytes, ctx: CsiContext) -> bytes:
        """Runs a function skill; returns the output bytes (not yet checked to be JSON)."""
        result = await self._execute(
            ctx, lambda inv: self._call(skill, inv, skill.run_index, input), input_bytes=len(input)
        )
        if isinstance(result, Variant):
            raise _guest_error(result)
        assert isinstance(result, bytes)
        if len(result) > self.output_limit:
            raise RuntimeFailure(
                f"The skill output of {len(result)} bytes exceeds the limit of {self.output_limit} bytes."
            )
        return result

    async def run_stream(
        self, skill: LoadedSkill, input: bytes, ctx: CsiContext, stream: StreamOutput
    ) -> None:
        """Runs a message-stream skill; each item it writes (and each tool event) is put on `stream`.

        The guest's thread appends to `stream` itself (runtime/stream_output.py); the caller closes it
        with its end marker once this returns or raises."""

        def call(inv: Invocation) -> Any:
            output = ResourceHost.own(inv.add_resource("stream-output"), STREAM_OUTPUT_TYPE)
            return self._call(skill, inv, skill.run_index, input, output)

        result = await self._execute(ctx, call, stream=stream, input_bytes=len(input))
        if isinstance(result, Variant):
            raise _guest_error(result)

    async def metadata(self, skill: LoadedSkill, ctx: CsiContext) -> SkillMetadata:
        if skill.metadata_index is None:
            return SkillMetadata(None, None, skill.kind, None, None)
        index = skill.metadata_index
        result = await self._execute(ctx, lambda inv: self._call(skill, inv, index), csi_allowed=False)
        description = bindings.field(result, "description")
        input_schema = _valid_schema(bindings.field(result, "input-schema"))
        output_schema = _valid_schema(bindings.field(result, "output-schema"))
        return SkillMetadata(description, skill.version, skill.kind, input_schema, output_schema)

    async def _execute(
        self,
        ctx: CsiContext,
        call: Callable[[Invocation], Any],
        csi_allowed: bool = True,
        stream: StreamOutput | None = None,
        input_bytes: int = 0,
    ) -> Any:
        loop = asyncio.get_running_loop()
        limits = self.namespace_limits.get(ctx.namespace, RunLimits())
        timeout = limits.timeout if limits.timeout is not None else self.timeout
        budget = await self._admit(ctx.namespace, input_bytes)
        invocation = Invocation(
            loop,
            ctx,
            timeout,
            csi_allowed=csi_allowed,
            cpu_limit=limits.cpu_time,
            memory_limit=limits.memory,
        )
        invocation.stream = stream
        self.in_flight.add(invocation)
        try:
            # The worker thread runs in a copy of this context: the request's span and telemetry reach
            # host calls.
            context = contextvars.copy_context()
            future = submit(loop, self._executor, context, self._guarded, invocation, call)
        except BaseException:
            self.in_flight.discard(invocation)
            self.admission.release(ctx.namespace)
            self.input_budget.release(budget)
            raise

        release = self.stuck.slot_release(lambda: self.admission.release(ctx.namespace))

        def finished(_: asyncio.Future[Any]) -> None:
            self.in_flight.discard(invocation)
            self.stuck.finished(invocation)
            release()
            self.input_budget.release(budget)

        future.add_done_callback(finished)
        try:
            # A guest blocked in WASI cannot be interrupted; answer at the deadline (or when stopped).
            return await _outcome(future, invocation, timeout + _GRACE)
        except TimeoutError:
            invocation.stop(TIMEOUT_MESSAGE)
            log.warning("invocation abandoned at its deadline", extra={"skill": _label(ctx)})
            raise RuntimeFailure(TIMEOUT_MESSAGE) from None
        except asyncio.CancelledError:
            invocation.stop(CANCELLED_MESSAGE)
            log.info("invocation cancelled", extra={"skill": _label(ctx)})
            raise
        finally:
            if not future.done():  # stopped; a guest blocked in WASI gives its slot back (bounded)
                self.stuck.watch(loop, future, invocation, release, _label(ctx))

    async def _admit(self, namespace: str, input_bytes: int) -> int:
        """The input's byte budget and a slot, both or neither: the input's native copies live as long as
        the export runs (runtime/budget.py). Returns the budget taken."""
        budget = await self.input_budget.acquire(input_bytes)
        try:
            await self.admission.acquire(namespace)
        except BaseException:
            self.input_budget.release(budget)
            raise
        return budget

    def _guarded(self, invocation: Invocation, call: Callable[[Invocation], Any]) -> Any:
        """Runs on a worker thread: every failure becomes an ExecutionError for this invocation only."""
        invocation.started = True
        invocation.start_cpu_clock()
        try:
            return call(invocation)
        except ExecutionError:
            raise
        except Exception as e:
            raise _runtime_failure(e, invocation) from None
        finally:
            cpu = invocation.cpu_used()
            audit.ran(cpu_seconds=cpu)
            self.on_cpu(invocation.ctx.namespace, cpu)

    def _call(self, skill: LoadedSkill, invocation: Invocation, index: ExportIndex, *args: Any) -> Any:
        memory = invocation.memory_limit or self.memory_limit
        bindings.bind_invocation(invocation)
        prepared = None
        try:
            # A fresh instance, made ahead of time when the skill ran recently (runtime/spares.py).
            prepared = self.spares.take(skill.component, memory, invocation)
            func = prepared.instance.get_func(prepared.store, index)
            if not skill.one_type_per_import:
                return func(prepared.store, *args)
            with wasm_calls.typed_once():
                return func(prepared.store, *args)
        finally:
            bindings.bind_invocation(None)
            invocation.close_resources()
            # Torn down before the answer is handed over: done after it, the teardown competed with the loop
            # writing the answer (+0.3 ms p50 at concurrency 1, bench/RESULTS.md "Session 7").
            if prepared is not None:
                prepared.close()
            invocation.flush_logs()
            after_hand_over(lambda: self.spares.refill(skill.component, memory))


async def _outcome(future: asyncio.Future[Any], invocation: Invocation, timeout: float) -> Any:
    """The thread's result; raises TimeoutError at the deadline, RuntimeFailure soon after a stop."""
    if not future.done():
        # Futures only (no task per invocation): the guest's outcome, a stop, or the deadline.
        done, _ = await asyncio.wait(
            (future, invocation.stopped), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            raise TimeoutError
    if future.done():
        return future.result()
    # Stopped: a busy guest traps within a check interval; one blocked in WASI is answered anyway.
    await asyncio.wait((future,), timeout=_GRACE + 0.2)
    if future.done():
        return future.result()
    raise RuntimeFailure(invocation.stop_reason or CANCELLED_MESSAGE)


def _label(ctx: CsiContext) -> str:
    return f"{ctx.namespace}/{ctx.skill}"


def _guest_error(error: Variant) -> ExecutionError:
    if error.tag == "invalid-input":
        return InvalidInput(str(error.payload))
    return UserCodeError(str(error.payload))


def _runtime_failure(error: Exception, invocation: Invocation) -> ExecutionError:
    if isinstance(error, CsiUseOutsideRun):
        return CsiUseFromMetadata()
    if invocation.stop_reason is not None:
        return RuntimeFailure(invocation.stop_reason)
    if isinstance(invocation.csi_error, CsiRefusal):
        refusal = invocation.csi_error
        return Refused(refusal.text, refusal.status, refusal.headers, refusal.kind)
    if invocation.csi_error is not None:
        return RuntimeFailure(str(invocation.csi_error))
    if isinstance(error, CsiError | InvocationStopped):
        return RuntimeFailure(str(error))
    text = str(error)
    if "exceeds memory limits" in text or "memory limit" in text:
        return RuntimeFailure(MEMORY_MESSAGE)
    if "fuel allocated for hostcalls has been exhausted" in text:
        log.warning("skill handed over too many values", extra={"skill": _label(invocation.ctx)})
        return RuntimeFailure(HOST_COPY_MESSAGE)
    log.error("skill trapped: %s", text, extra={"skill": _label(invocation.ctx)})
    return RuntimeFailure(text)
