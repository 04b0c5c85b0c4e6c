"""OpenAPI paths of the console's JSON routes, merged into `/openapi.json` (tag `console`)."""

from __future__ import annotations

from typing import Any

_SECURITY: list[dict[str, list[str]]] = [{"api_token": []}]
_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_AUTH = {
    "400": {"description": "Malformed authorization header", "content": _TEXT},
    "401": {"description": "Bearer token expected", "content": _TEXT},
    "403": {"description": "Bearer token invalid", "content": _TEXT},
    "500": {"description": "Authorization service unreachable", "content": _TEXT},
}
_OBJECT = {"application/json": {"schema": {"type": "object"}}}


def _get(operation: str, summary: str, parameters: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "get": {
            "tags": ["console"],
            "operationId": operation,
            "summary": summary,
            "security": _SECURITY,
            "parameters": parameters,
            "responses": {"200": {"description": summary, "content": _OBJECT}, **_AUTH, **extra},
        }
    }


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def console_paths() -> dict[str, Any]:
    return {
        "/v1/console/skills": _get(
            "console_skills", "Namespaces with their skills' deployment state, tools and errors", []
        ),
        "/v1/console/executions": _get(
            "console_executions",
            "The last recorded skill executions, newest first",
            [
                _query("namespace", "Only this namespace", type="string"),
                _query("skill", "Only skills of this name", type="string"),
                _query(
                    "status", "Only this outcome", type="string", enum=["ok", "logic_error", "runtime_error"]
                ),
                _query("limit", "At most this many", type="string", pattern="^[0-9]+$"),
            ],
            **{"400": {"description": "Unknown status or invalid limit", "content": _TEXT}},
        ),
        "/v1/console/executions/{trace_id}": _get(
            "console_execution",
            "One recorded execution with its spans and the skill's log lines",
            [{"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            **{"404": {"description": "No such execution recorded", "content": _TEXT}},
        ),
        "/v1/console/health": _get(
            "console_health", "Engine state as the console's health page shows it", []
        ),
    }
