"""Skill routes: they parse, call the skill store and runtime; `api.errors` maps errors to responses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from skill_engine.api.http import (
    HttpError,
    bearer_token,
    json_body,
    json_bytes_response,
    json_response,
    namespace_param,
    text,
)
from skill_engine.api.json_worker import JsonProblem, compact_json
from skill_engine.api.skill_stream import SkillStream
from skill_engine.csi import Csi, CsiContext
from skill_engine.errors import InvalidOutput, IsMessageStream
from skill_engine.metadata import SkillKind
from skill_engine.runtime.runner import WasmRuntime
from skill_engine.skills.builtin import BuiltinSkill
from skill_engine.skills.store import SkillStore
from skill_engine.telemetry import Telemetry

log = logging.getLogger("skill_engine.api")
T = TypeVar("T")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Awaits `work`, cancelling it if the client goes away first (the body must be fully read).

    `work` runs in the request's own task, at once; only the wait for the client's disconnect is a task
    of its own, which cancels the request's task if the client leaves before `work` is done.
    """
    current = asyncio.current_task()
    assert current is not None
    gone = False

    async def disconnected() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        current.cancel()

    watcher = asyncio.ensure_future(disconnected())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        current.uncancel()  # the cancellation was ours: raised as the client's, not the server's
        log.info("client disconnected: invocation of %s cancelled", request.url.path)
        raise asyncio.CancelledError from None
    finally:
        watcher.cancel()


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
        """`ok`, or 503 once more guests are stuck in WASI than MAX_STUCK_SKILLS (runtime/stuck.py);
        `?detail=true` answers JSON with the numbers behind it."""
        stuck = self.runtime.stuck
        status = 200 if stuck.healthy else 503
        if request.query_params.get("detail", "").lower() in ("1", "true"):
            detail = {
                "status": "ok" if stuck.healthy else "unhealthy",
                "stuck_skill_threads": stuck.count,
                "max_stuck_skill_threads": stuck.bound,
            }
            return json_response(detail, status)
        if not stuck.healthy:
            return text(
                f"unhealthy: {stuck.count} skill threads are stuck in WASI, more than the "
                f"{stuck.bound} allowed by MAX_STUCK_SKILLS",
                503,
            )
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
        # The span's end and the outcome's metrics and log line wait until the response was sent.
        with self.telemetry.execution(namespace, name).record(defer=True):
            if isinstance(skill, BuiltinSkill):
                raise skill.run_error()
            if skill.kind is SkillKind.MESSAGE_STREAM:
                raise IsMessageStream()
            output = await until_disconnect(
                request, self.runtime.run(skill, input, CsiContext(namespace, name, token))
            )
            try:
                body = await compact_json(output)  # a large output is re-serialized off the event loop
            except JsonProblem as e:
                raise InvalidOutput(e.text) from None
        return json_bytes_response(body)

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
        stream = SkillStream(
            self.store, self.runtime, self.csi, self.telemetry, CsiContext(namespace, name, token), input
        )
        return StreamingResponse(
            stream.events(), headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
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
