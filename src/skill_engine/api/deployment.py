"""Routes of the deployment side: the skill cache (engine-spec §2.8) and MCP servers per namespace (§2.7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from skill_engine.api.http import json_response, namespace_param
from skill_engine.skills.namespaces import NamespaceWatcher
from skill_engine.skills.store import SkillStore


class DeploymentRoutes:
    def __init__(self, store: SkillStore, watcher: NamespaceWatcher) -> None:
        self.store = store
        self.watcher = watcher

    async def cached_skills(self, request: Request) -> Response:
        return json_response(self.store.cached_paths())

    async def drop_cached_skill(self, request: Request) -> Response:
        namespace = namespace_param(request)
        name: str = request.path_params["name"]
        if self.store.invalidate(namespace, name):
            return json_response("Skill removed from cache")
        return json_response("Skill was not present in cache")

    async def mcp_servers(self, request: Request) -> Response:
        namespace: str = request.path_params["namespace"]
        servers = self.watcher.mcp_servers.get(namespace)
        if servers is None:
            return json_response(f"Namespace '{namespace}' not found", 404)
        return json_response(sorted(servers))
