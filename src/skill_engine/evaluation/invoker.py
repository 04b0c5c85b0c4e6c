"""Runs one example through the engine's normal path: the skill store, admission, limits and tracing.

The same calls as `/run` and `/message-stream`, minus HTTP: a function skill's output is its JSON value; a
message-stream skill is judged on `{"text": <the final message text>, "payload": <its end payload>}`.
Each example gets a trace of its own (`evaluation_example`) so a result's `trace_id` leads to exactly
that invocation. A 429 from admission is waited out a few times: an evaluation should queue behind
live traffic, not record the engine's load as the skill's failure.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context

from skill_engine.csi import Csi, CsiContext
from skill_engine.errors import ExecutionError, InvalidOutput
from skill_engine.metadata import SkillKind
from skill_engine.runtime.runner import WasmRuntime
from skill_engine.runtime.stream_output import StreamOutput
from skill_engine.skills.builtin import BuiltinSkill
from skill_engine.skills.store import SkillStore
from skill_engine.streaming import MessageAppend, MessageBegin, MessageEnd
from skill_engine.telemetry import Telemetry, activate, deactivate
from skill_engine.telemetry.tracing import current_trace_id
from skill_engine.telemetry.usage import metered

OVERLOAD_RETRIES = 5


@dataclass
class Outcome:
    output: Any = None
    error: str | None = None
    error_kind: str | None = None
    """As in the audit trail: `policy_denied`, `runtime_error`, `overloaded`, ..."""
    status: int = 200
    latency_ms: float = 0.0
    tokens: dict[str, int] = field(default_factory=dict)
    trace_id: str | None = None
    digest: str | None = None


class SkillInvoker:
    def __init__(self, store: SkillStore, runtime: WasmRuntime, csi: Csi, telemetry: Telemetry) -> None:
        self.store = store
        self.runtime = runtime
        self.csi = csi
        self.telemetry = telemetry

    async def invoke(self, namespace: str, name: str, input: Any, token: str | None) -> Outcome:
        for attempt in range(OVERLOAD_RETRIES + 1):
            outcome = await self._traced(namespace, name, input, token)
            if outcome.status != 429 or attempt == OVERLOAD_RETRIES:
                return outcome
            await asyncio.sleep(min(5.0, 0.5 * 2**attempt))
        raise AssertionError("unreachable")

    async def _traced(self, namespace: str, name: str, input: Any, token: str | None) -> Outcome:
        activated = activate(self.telemetry)
        tracer = self.telemetry.tracing.tracer
        attributes = {"skill": f"{namespace}/{name}"}
        try:
            if tracer is None:
                return await self._timed(namespace, name, input, token)
            root = otel_context.Context()  # a trace of its own, not a child of the POST that started the run
            with tracer.start_as_current_span("evaluation_example", context=root, attributes=attributes):
                outcome = await self._timed(namespace, name, input, token)
                outcome.trace_id = current_trace_id()
                return outcome
        finally:
            deactivate(activated)

    async def _timed(self, namespace: str, name: str, input: Any, token: str | None) -> Outcome:
        started = time.perf_counter()
        outcome = Outcome()
        with metered() as usage:
            try:
                outcome.output = await self._invoke(namespace, name, input, token, outcome)
            except ExecutionError as e:
                outcome.error, outcome.status = e.message, e.status
                outcome.error_kind = getattr(e, "kind", e.metric_status)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug of ours is this example's error, never the whole run's
                outcome.error, outcome.status = f"Internal error: {type(e).__name__}: {e}", 500
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        outcome.tokens = usage.to_json()
        return outcome

    async def _invoke(
        self, namespace: str, name: str, input: Any, token: str | None, outcome: Outcome
    ) -> Any:
        raw = json.dumps(input, separators=(",", ":"), ensure_ascii=False).encode()
        ctx = CsiContext(namespace, name, token)
        skill = await self.store.fetch(namespace, name)
        cached = self.store.cache.get(f"{namespace}/{name}")
        outcome.digest = cached.digest if cached is not None else None
        with self.telemetry.execution(namespace, name).record():
            if isinstance(skill, BuiltinSkill):
                if skill.kind is not SkillKind.MESSAGE_STREAM:
                    raise skill.run_error()
                return await self._collect(lambda output: skill.stream(self.csi, ctx, raw, output.put))
            if skill.kind is SkillKind.MESSAGE_STREAM:
                return await self._collect(lambda output: self.runtime.run_stream(skill, raw, ctx, output))
            output = await self.runtime.run(skill, raw, ctx)
            try:
                return json.loads(output)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise InvalidOutput(str(e)) from None

    async def _collect(self, produce: Any) -> Any:
        """Drains a message stream: the text of its (last) message and its end payload."""
        output = StreamOutput(8)
        done = object()
        text: list[str] = []
        payload: Any = None

        async def run() -> None:
            try:
                await produce(output)
            finally:
                output.close(done)

        producer = asyncio.ensure_future(run())
        try:
            while True:
                for item in await output.get_ready():
                    if item is done:
                        await producer  # raises the skill's error
                        return {"text": "".join(text), "payload": payload}
                    text, payload = _apply(item, text, payload)
        finally:
            if not producer.done():
                producer.cancel()


def _apply(item: Any, text: list[str], payload: Any) -> tuple[list[str], Any]:
    if isinstance(item, MessageBegin):
        return [], payload
    if isinstance(item, MessageAppend):
        text.append(item.text)
    elif isinstance(item, MessageEnd) and item.payload is not None:
        payload = json.loads(item.payload)
    return text, payload
