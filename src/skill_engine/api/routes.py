"""Skill routes: they parse, call the skill store and runtime; `api.errors` maps errors to responses."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from skill_engine.api.http import (
    HttpError,
    bearer_token,
    json_body,
    json_response,
    namespace_param,
    serde_style,
    text,
)
from skill_engine.csi import Csi, CsiContext
from skill_engine.errors import ExecutionError, InvalidOutput, IsFunction, IsMessageStream
from skill_engine.governance import audit
from skill_engine.metadata import SkillKind
from skill_engine.runtime.runner import WasmRuntime
from skill_engine.skills.builtin import BuiltinSkill
from skill_engine.skills.store import SkillStore
from skill_engine.streaming import MessageStream, StreamItem, error_event
from skill_engine.telemetry import Telemetry
from skill_engine.telemetry.executions import Execution

log = logging.getLogger("skill_engine.api")
T = TypeVar("T")
STREAM_BUFFER = 8
"""Items a stream skill may be ahead of its client before `write` waits (back-pressure)."""


@dataclass(frozen=True)
class _End:
    error: str | None = None


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Awaits `work`, cancelling it if the client goes away first (the body must be fully read)."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        log.info("client disconnected: invocation of %s cancelled", request.url.path)
        raise asyncio.CancelledError
    return task.result()


class SkillRoutes:
    def __init__(
        self, store: SkillStore, runtime: WasmRuntime, csi: Csi, telemetry: Telemetry | None = None
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.csi = csi
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.beta = False
        """PHARIA_AI_FEATURE_SET=BETA: `GET /v1/skills?type=chat|programmable` filters."""

    async def health(self, request: Request) -> Response:
        return text("ok")

    async def list_skills(self, request: Request) -> Response:
        kind = request.query_params.get("type") if self.beta else None  # stable ignores `?type=`
        if kind is not None and kind not in ("chat", "programmable"):
            expected = "expected `chat` or `programmable`"
            raise HttpError(400, f"Failed to deserialize query string: unknown variant `{kind}`, {expected}")
        return json_response(self.store.skill_paths(kind))

    async def run(self, request: Request) -> Response:
        namespace = namespace_param(request)
        name: str = request.path_params["name"]
        token = bearer_token(request)
        input = await json_body(request)
        skill = await self.store.fetch(namespace, name)
        with self.telemetry.execution(namespace, name).record():
            if isinstance(skill, BuiltinSkill):
                raise skill.run_error()
            if skill.kind is SkillKind.MESSAGE_STREAM:
                raise IsMessageStream()
            output = await until_disconnect(
                request, self.runtime.run(skill, input, CsiContext(namespace, name, token))
            )
            try:
                value = json.loads(output)
            except json.JSONDecodeError as e:
                raise InvalidOutput(serde_style(e)) from None
            except UnicodeDecodeError as e:
                raise InvalidOutput(str(e)) from None
        return json_response(value)

    async def metadata(self, request: Request) -> Response:
        namespace = namespace_param(request)
        name: str = request.path_params["name"]
        token = bearer_token(request)
        skill = await self.store.fetch(namespace, name)
        if isinstance(skill, BuiltinSkill):
            return json_response(skill.metadata().to_json())
        metadata = await self.runtime.metadata(skill, CsiContext(namespace, name, token))
        return json_response(metadata.to_json())

    async def message_stream(self, request: Request) -> Response:
        """Server-Sent Events; failures after the stream opened arrive as an `error` event."""
        namespace = namespace_param(request)
        name: str = request.path_params["name"]
        token = bearer_token(request)
        input = await json_body(request)
        self.runtime.admission.check(namespace)  # overload is a 429 before the stream opens
        ctx = CsiContext(namespace, name, token)
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=STREAM_BUFFER)
        # Set once the skill is fetched; its outcome is counted when the stream ends (render errors too).
        execution: Execution | None = None

        async def produce() -> None:
            nonlocal execution
            try:
                skill = await self.store.fetch(namespace, name)
                execution = self.telemetry.execution(namespace, name)
                with execution.span():
                    if isinstance(skill, BuiltinSkill):
                        await skill.stream(self.csi, ctx, input, queue.put)
                    elif skill.kind is SkillKind.FUNCTION:
                        raise IsFunction()
                    else:
                        await self.runtime.run_stream(skill, input, ctx, queue)
                await queue.put(_End())
            except ExecutionError as e:
                if execution is not None:
                    execution.error = e
                audit.failed(getattr(e, "kind", e.metric_status))
                await queue.put(_End(e.message))
            except Exception as e:  # a bug of ours must still end the stream with an error event
                log.exception("message stream of %s/%s failed", namespace, name)
                if execution is not None:
                    execution.error = e
                await queue.put(_End(f"Internal error: {type(e).__name__}"))

        async def events() -> AsyncIterator[bytes]:
            producer = asyncio.ensure_future(produce())
            stream = MessageStream()
            try:
                while True:
                    item: StreamItem | _End = await queue.get()
                    if isinstance(item, _End):
                        if execution is not None:
                            execution.finish(execution.error)
                        if item.error is not None:
                            yield error_event(item.error)
                        return
                    try:
                        rendered = stream.render(item)
                    except ExecutionError as e:
                        if execution is not None:
                            execution.finish(e)
                        yield error_event(e.message)
                        return
                    yield rendered
            finally:
                # Client gone or stream ended early: stop the skill and close its upstream streams.
                if not producer.done():
                    producer.cancel()
                    log.info("message stream of %s/%s cancelled", namespace, name)

        return StreamingResponse(
            events(), headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )

    async def list_tools(self, request: Request) -> Response:
        namespace: str = request.path_params["namespace"]
        token = bearer_token(request)
        if not self.csi.tools.knows(namespace):
            return json_response(f"Namespace '{namespace}' not found", 404)
        tools = await self.csi.tools.list_tools_for(namespace, token)
        return json_response(
            [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in tools]
        )
