"""Route handlers. They parse, call the skill store and runtime, and map errors to status codes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from skill_engine.api.http import HttpError, bearer_token, json_body, json_response, namespace_param, text
from skill_engine.csi import CsiContext
from skill_engine.errors import ExecutionError, InvalidOutput, IsMessageStream
from skill_engine.runtime.runner import SkillKind, WasmRuntime
from skill_engine.skills.store import SkillStore

Handler = Callable[["SkillRoutes", Request], Awaitable[Response]]


def handles_errors(handler: Handler) -> Handler:
    """Turns the engine's errors into text responses with their status codes."""

    async def wrapped(self: SkillRoutes, request: Request) -> Response:
        try:
            return await handler(self, request)
        except HttpError as e:
            return text(e.text, e.status)
        except ExecutionError as e:
            return text(e.message, e.status)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


class SkillRoutes:
    def __init__(self, store: SkillStore, runtime: WasmRuntime) -> None:
        self.store = store
        self.runtime = runtime

    async def health(self, request: Request) -> Response:
        return text("ok")

    @handles_errors
    async def list_skills(self, request: Request) -> Response:
        bearer_token(request)
        return json_response(self.store.skill_paths())

    @handles_errors
    async def run(self, request: Request) -> Response:
        namespace = namespace_param(request)
        name: str = request.path_params["name"]
        token = bearer_token(request)
        input = await json_body(request)
        skill = await self.store.fetch(namespace, name)
        if skill.kind is SkillKind.MESSAGE_STREAM:
            raise IsMessageStream()
        output = await self.runtime.run(skill, input, CsiContext(namespace, name, token))
        try:
            value = json.loads(output)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            detail = (
                f"{e.msg} at line {e.lineno} column {e.colno}"
                if isinstance(e, json.JSONDecodeError)
                else str(e)
            )
            raise InvalidOutput(detail) from None
        return json_response(value)

    @handles_errors
    async def metadata(self, request: Request) -> Response:
        namespace = namespace_param(request)
        name: str = request.path_params["name"]
        token = bearer_token(request)
        skill = await self.store.fetch(namespace, name)
        metadata = await self.runtime.metadata(skill, CsiContext(namespace, name, token))
        return json_response(metadata.to_json())
