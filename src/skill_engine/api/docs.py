"""Public documentation routes (engine-spec §2.10): `/`, `/openapi.json` and `/api-docs`.

The OpenAPI document follows PhariaEngine's (title `pharia-engine`, version `0.15.0`, bearer scheme
`api_token`, tags `skills`/`docs`/`tools`) with one deliberate difference: paths carry their leading slash
(`/v1/skills`, not PhariaEngine's `v1/skills`), so generated clients and fuzzers reach the real routes.
See docs/decisions/0004-openapi-paths.md.
"""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from skill_engine.api.openapi_paths import operational_paths

TITLE = "pharia-engine"
VERSION = "0.15.0"
DESCRIPTION = "The best place to run serverless AI applications."
BETA_DESCRIPTION = "Pharia Kernel (Beta): The best place to run serverless AI applications."

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_NS = {
    "name": "namespace",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "minLength": 1, "maxLength": 64},
    "description": "Namespace the skill is configured in",
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_SECURITY: list[dict[str, list[str]]] = [{"api_token": []}]


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Bad request: invalid namespace or header, skill not found, input rejected or skill error",
        401: "Bearer token expected",
        403: "Bearer token invalid",
        404: "Namespace not found",
        413: "Request body above 50 MiB",
        415: "Expected request with `Content-Type: application/json`",
        422: "Well-formed JSON of the wrong shape",
        429: "Overloaded: too many skill executions; retry after `Retry-After` seconds",
        500: "Authorization service unreachable, misconfigured namespace or invalid skill output",
        503: "Runtime unavailable: loading, CSI failure, trap, timeout or shutdown",
    }
    return {str(code): {"description": reasons[code], "content": _TEXT} for code in codes}


_AUTH_ERRORS = (400, 401, 403, 500)
_METADATA_SCHEMA = {
    "type": "object",
    "properties": {
        "description": {"type": ["string", "null"]},
        "version": {"type": ["string", "null"]},
        "skill_type": {"type": "string", "enum": ["function", "message_stream"]},
        "input_schema": {},
        "output_schema": {},
    },
    "required": ["description", "version", "skill_type", "input_schema", "output_schema"],
}


def openapi(beta: bool) -> dict[str, Any]:  # long: one literal document, read top to bottom like the spec
    run_body = {"required": True, "content": {"application/json": {"schema": {}}}}
    paths: dict[str, Any] = {
        "/openapi.json": {
            "get": {
                "tags": ["docs"],
                "operationId": "api_docs",
                "responses": {"200": {"description": "This document", "content": {"application/json": {}}}},
            }
        },
        "/v1/skills": {
            "get": {
                "tags": ["skills"],
                "operationId": "skills",
                "summary": "List skills",
                "description": "Every configured skill as `namespace/name`.",
                "security": _SECURITY,
                "responses": {
                    "200": {
                        "description": "Skill names",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": {"type": "string"}}}
                        },
                    },
                    **_errors(*_AUTH_ERRORS),
                },
            }
        },
        "/v1/skills/{namespace}/{name}/run": {
            "post": {
                "tags": ["skills"],
                "operationId": "run_skill",
                "summary": "Run a function skill",
                "security": _SECURITY,
                "parameters": [_NS, _NAME],
                "requestBody": run_body,
                "responses": {
                    "200": {
                        "description": "The skill's output",
                        "content": {"application/json": {"schema": {}}},
                    },
                    **_errors(*_AUTH_ERRORS, 413, 415, 429, 503),
                },
            }
        },
        "/v1/skills/{namespace}/{name}/message-stream": {
            "post": {
                "tags": ["skills"],
                "operationId": "message_stream_skill",
                "summary": "Run a message-stream skill (Server-Sent Events)",
                "description": "Events `message_begin`, `message_append`, `message_end`, `tool_call` and "
                "`error`; failures after the stream opened arrive as an `error` event.",
                "security": _SECURITY,
                "parameters": [_NS, _NAME],
                "requestBody": run_body,
                "responses": {
                    "200": {
                        "description": "Event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(*_AUTH_ERRORS, 413, 415),
                },
            }
        },
        "/v1/tools/{namespace}": {
            "get": {
                "tags": ["tools"],
                "operationId": "list_tools",
                "summary": "List the tools of a namespace",
                "security": _SECURITY,
                "parameters": [{**_NS, "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "Tools",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "name": {"type": "string"},
                                            "description": {"type": "string"},
                                            "input_schema": {},
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "404": {
                        "description": "Namespace not found",
                        "content": {"application/json": {"schema": {"type": "string"}}},
                    },
                    **_errors(*_AUTH_ERRORS),
                },
            }
        },
        "/v1/mcp_servers/{namespace}": {
            "get": {
                "tags": ["tools"],
                "operationId": "list_mcp_servers",
                "summary": "List the MCP servers of a namespace",
                "security": _SECURITY,
                "parameters": [{**_NS, "schema": {"type": "string"}}],
                "responses": {
                    "200": {
                        "description": "MCP server URLs",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": {"type": "string"}}}
                        },
                    },
                    "404": {
                        "description": "Namespace not found",
                        "content": {"application/json": {"schema": {"type": "string"}}},
                    },
                    **_errors(*_AUTH_ERRORS),
                },
            }
        },
    }
    if beta:
        paths["/v1/skills/{namespace}/{name}/metadata"] = {
            "get": {
                "tags": ["skills"],
                "operationId": "skill_metadata",
                "summary": "Metadata of a skill",
                "security": _SECURITY,
                "parameters": [_NS, _NAME],
                "responses": {
                    "200": {
                        "description": "Metadata",
                        "content": {"application/json": {"schema": _METADATA_SCHEMA}},
                    },
                    **_errors(*_AUTH_ERRORS, 429, 503),
                },
            }
        }
    paths.update(operational_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "description": BETA_DESCRIPTION if beta else DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
            "version": VERSION,
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"api_token": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        },
        "tags": [
            {"name": "skills", "description": "Run skills and inspect them"},
            {"name": "docs", "description": "This API description"},
            {"name": "tools", "description": "Tools available to skills"},
            {"name": "csi", "description": "CSI over HTTP, for developing skills outside the engine"},
            {"name": "documents", "description": "The embedded document index's management API"},
            {"name": "evaluations", "description": "Datasets and evaluation runs of skills"},
        ],
    }


def is_beta(feature_set: str) -> bool:
    return feature_set.strip().lower() == "beta"


LANDING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PhariaKernel</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/static/landing.css">
</head>
<body><main>
<h1>Welcome to PhariaKernel 👋</h1>
<p>This is Skill Engine, a runtime for AI skills compiled to WebAssembly and served over HTTP, compatible
with PhariaEngine. Skills are built with the
<a href="https://pharia-skill.readthedocs.io/">Pharia Skill SDK</a>.</p>
<nav aria-label="Engine pages"><ul>
<li><a href="/ui">Skill Console</a>: find skills, try them, see their traces</li>
<li><a href="/api-docs">API documentation</a> (<a href="/openapi.json">OpenAPI document</a>)</li>
<li><a href="/ui#/health">Health</a> (<a href="/health">/health</a> for probes;
metrics on the metrics address, <code>/metrics</code>)</li>
</ul></nav>
<h2>Try it</h2>
<p>The built-in <code>test-beta/hello</code> skill streams a greeting:</p>
<pre><code>curl -N -X POST {origin}/v1/skills/test-beta/hello/message-stream \\
  -H 'Content-Type: application/json' -d '{{}}'</code></pre>
</main></body></html>
"""

API_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PhariaKernel API</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/static/vendor/swagger-ui/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/ui/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/ui/static/api-docs.js"></script></body></html>
"""


class DocsRoutes:
    def __init__(self, feature_set: str, extra_paths: dict[str, Any] | None = None) -> None:
        self.document = openapi(is_beta(feature_set))
        self.document["paths"].update(extra_paths or {})
        self._json = json.dumps(self.document, ensure_ascii=False).encode()

    async def openapi_json(self, request: Request) -> Response:
        return Response(self._json, media_type="application/json")

    async def api_docs(self, request: Request) -> Response:
        """Swagger UI, served from the engine itself (vendored, works without internet access)."""
        return HTMLResponse(API_DOCS)

    async def landing(self, request: Request) -> Response:
        origin = html.escape(f"{request.url.scheme}://{request.url.netloc}")
        return HTMLResponse(LANDING.format(origin=origin))
