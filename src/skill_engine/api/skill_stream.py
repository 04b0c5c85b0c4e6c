"""One `POST .../message-stream` request: a producer task runs the skill into a bounded buffer, and the
response body renders what it wrote as Server-Sent Events.

The body takes everything buffered at once and sends it as one chunk (fewer passes through the
middleware's send wrappers and fewer socket writes); it never waits for more than what is there, so
each event still reaches an interactive client as soon as it is written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from skill_engine.csi import Csi, CsiContext
from skill_engine.errors import ExecutionError, IsFunction
from skill_engine.governance import audit
from skill_engine.metadata import SkillKind
from skill_engine.runtime.runner import WasmRuntime
from skill_engine.runtime.stream_output import StreamOutput
from skill_engine.skills.builtin import BuiltinSkill
from skill_engine.skills.store import SkillStore
from skill_engine.streaming import MessageStream, error_event
from skill_engine.telemetry import Telemetry
from skill_engine.telemetry.executions import Execution

log = logging.getLogger("skill_engine.api")
STREAM_BUFFER = 32
"""Items a stream skill may be ahead of its client before `write` waits (back-pressure)."""


@dataclass(frozen=True)
class _End:
    error: str | None = None


class SkillStream:
    """Failures after the stream opened arrive as an `error` event; a client gone cancels the skill."""

    def __init__(
        self,
        store: SkillStore,
        runtime: WasmRuntime,
        csi: Csi,
        telemetry: Telemetry,
        ctx: CsiContext,
        input: Any,
    ) -> None:
        self.store, self.runtime, self.csi, self.telemetry = store, runtime, csi, telemetry
        self.ctx = ctx
        self.input = input
        self.output = StreamOutput(STREAM_BUFFER)
        # Set once the skill is fetched; its outcome is counted when the stream ends (render errors too).
        self.execution: Execution | None = None

    async def _run(self) -> None:
        ctx = self.ctx
        skill = await self.store.fetch(ctx.namespace, ctx.skill)
        self.execution = self.telemetry.execution(ctx.namespace, ctx.skill)
        with self.execution.span():
            if isinstance(skill, BuiltinSkill):
                await skill.stream(self.csi, ctx, self.input, self.output.put)
            elif skill.kind is SkillKind.FUNCTION:
                raise IsFunction()
            else:
                await self.runtime.run_stream(skill, self.input, ctx, self.output)
        self.output.close(_End())

    async def _produce(self) -> None:
        try:
            await self._run()
        except ExecutionError as e:
            if self.execution is not None:
                self.execution.error = e
            audit.failed(getattr(e, "kind", e.metric_status))
            self.output.close(_End(e.message))
        except Exception as e:  # a bug of ours must still end the stream with an error event
            log.exception("message stream of %s/%s failed", self.ctx.namespace, self.ctx.skill)
            if self.execution is not None:
                self.execution.error = e
            self.output.close(_End(f"Internal error: {type(e).__name__}"))

    def _finish(self, error: BaseException | None) -> None:
        if self.execution is not None:
            self.execution.finish(error)

    async def events(self) -> AsyncIterator[bytes]:
        producer = asyncio.ensure_future(self._produce())
        stream = MessageStream()
        try:
            while True:
                chunk: list[bytes] = []
                for item in await self.output.get_ready():
                    if isinstance(item, _End):
                        self._finish(self.execution.error if self.execution is not None else None)
                        if item.error is not None:
                            chunk.append(error_event(item.error))
                        if chunk:
                            yield b"".join(chunk)
                        return
                    try:
                        chunk.append(stream.render(item))
                    except ExecutionError as e:
                        self._finish(e)
                        chunk.append(error_event(e.message))
                        yield b"".join(chunk)
                        return
                yield b"".join(chunk)
        finally:
            # Client gone or stream ended early: stop the skill and close its upstream streams.
            if not producer.done():
                producer.cancel()
                log.info("message stream of %s/%s cancelled", self.ctx.namespace, self.ctx.skill)
