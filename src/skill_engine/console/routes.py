"""Routes of the console: its pages and assets (public, they hold no data) and its JSON under `/v1/console/`
(behind the same authentication as the rest of `/v1/`).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from skill_engine.api.http import HttpError, bearer_token, json_response, text
from skill_engine.console.health import health_report
from skill_engine.console.view import EngineView
from skill_engine.csi.tool_names import TEST_BETA
from skill_engine.skills.builtin import BUILTINS
from skill_engine.skills.catalogue import ConfiguredChat, KnownSkill

STATIC = Path(__file__).parent / "static"
EXECUTION_STATUSES = ("ok", "logic_error", "runtime_error")


Handler = Callable[["ConsoleRoutes", Request], Awaitable[Response]]


def with_bearer(handler: Handler) -> Handler:
    """The console's JSON needs a bearer token like the rest of `/v1/` (the IAM checks it when one is set)."""

    @functools.wraps(handler)
    async def checked(self: ConsoleRoutes, request: Request) -> Response:
        try:
            bearer_token(request)
        except HttpError as e:
            return text(e.text, e.status)
        return await handler(self, request)

    return checked


class ConsoleRoutes:
    def __init__(self, engine: EngineView) -> None:
        self.engine = engine
        self.started_at = time.time()

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/ui", self.page, methods=["GET"]),
            Route("/ui/", self.page, methods=["GET"]),
            Mount("/ui/static", StaticFiles(directory=STATIC), name="console-static"),
            Route("/v1/console/skills", self.skills, methods=["GET"]),
            Route("/v1/console/executions", self.executions, methods=["GET"]),
            Route("/v1/console/executions/{trace_id}", self.execution, methods=["GET"]),
            Route("/v1/console/health", self.health, methods=["GET"]),
        ]

    async def page(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    @with_bearer
    async def skills(self, request: Request) -> Response:
        """Every namespace with its skills' deployment state (schemas come from each skill's metadata)."""
        engine = self.engine
        store, watcher = engine.store, engine.watcher
        namespaces: list[dict[str, Any]] = []
        for namespace in sorted(watcher.sources):
            known = sorted(store.known(namespace).items())
            skills = [self._skill(namespace, name, entry) for name, entry in known]
            updated = watcher.updated_at.get(namespace)
            namespaces.append(
                {
                    "name": namespace,
                    "error": store.namespace_error(namespace),
                    "refused": store.refused(namespace),
                    "updated_at": updated,
                    "skills": skills,
                    "mcp_servers": sorted(watcher.mcp_servers.get(namespace, ())),
                    "native_tools": list(watcher.native_tools.get(namespace, ())),
                }
            )
        builtins = [
            {"name": name, "kind": skill.kind.value, "state": "built in"} for name, skill in BUILTINS.items()
        ]
        namespaces.append(
            {
                "name": TEST_BETA,
                "error": None,
                "refused": {},
                "updated_at": None,
                "skills": builtins,
                "builtin": True,
                "mcp_servers": [],
                "native_tools": [tool.name for tool in engine.csi.tools.list_tools(TEST_BETA)],
            }
        )
        return json_response({"namespaces": namespaces})

    def _skill(self, namespace: str, name: str, known: KnownSkill) -> dict[str, Any]:
        """One skill's catalogue entry: a configured chat, or a component with its cached/compiled state."""
        store = self.engine.store
        if isinstance(known, ConfiguredChat):
            return {
                "name": name,
                "kind": "chat",
                "version": known.entry.version,
                "model": known.entry.model,
                "state": "configured",
            }
        path = f"{namespace}/{name}"
        cached = store.cache.peek(path)
        return {
            "name": name,
            "kind": cached.skill.kind.value if cached is not None else None,
            "wit_version": cached.skill.version if cached is not None else None,
            "tag": known.tag,
            "digest": cached.digest if cached is not None else known.digest,
            "size": cached.size if cached is not None else None,
            "state": store.compile_state(path),
        }

    @with_bearer
    async def executions(self, request: Request) -> Response:
        recorder = self.engine.telemetry.recorder
        query = request.query_params
        status = query.get("status") or None
        if status is not None and status not in EXECUTION_STATUSES:
            return text(f"Unknown status `{status}`, expected one of {', '.join(EXECUTION_STATUSES)}", 400)
        limit_text = query.get("limit", "100")
        if not limit_text.isdigit():
            return text("`limit` must be a non-negative integer", 400)
        found = (
            recorder.executions(query.get("namespace"), query.get("skill"), status, int(limit_text))
            if recorder is not None
            else []
        )
        return json_response(
            {
                "recording": recorder is not None,
                "capacity": recorder.capacity if recorder is not None else 0,
                # Each worker process records its own executions (WORKERS > 1: this one's only).
                "workers": self.engine.settings.workers,
                "worker": os.getpid(),
                "executions": found,
            }
        )

    @with_bearer
    async def execution(self, request: Request) -> Response:
        recorder = self.engine.telemetry.recorder
        trace_id: str = request.path_params["trace_id"]
        found = recorder.execution(trace_id) if recorder is not None else None
        if found is None:
            return text(f"No recorded execution with trace id {trace_id}", 404)
        return json_response(found)

    @with_bearer
    async def health(self, request: Request) -> Response:
        return json_response(health_report(self.engine, self.started_at))
