"""OpenAPI descriptions of the routes PhariaEngine's document leaves out: public pages and health, CSI
over HTTP (`/csi/v1/*`, `/csi/v2/*`, legacy `/csi`), the embedded document index's management API
(`/v1/documents/*`), the skill cache (`/cached_skills`) and evaluations (`/v1/datasets`,
`/v1/evaluations`). docs.py merges them into `/openapi.json`, so the fuzzer (tests/fuzz) reaches every
route the engine serves.
"""

from __future__ import annotations

from typing import Any

_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_JSON_ANY: dict[str, Any] = {"application/json": {"schema": {}}}
_EITHER = {**_TEXT, **_JSON_ANY}
_SSE = {"text/event-stream": {"schema": {"type": "string"}}}
_SECURITY: list[dict[str, list[str]]] = [{"api_token": []}]
_NS = {
    "name": "namespace",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "minLength": 1, "maxLength": 64},
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}

CSI_FUNCTIONS = [
    "complete",
    "completion_stream",
    "chat",
    "chat_stream",
    "explain",
    "chunk",
    "chunk_with_offsets",
    "select_language",
    "search",
    "documents",
    "document_metadata",
    "invoke_tool",
    "list_tools",
]


def _text(description: str) -> dict[str, Any]:
    return {"description": description, "content": _TEXT}


def _auth() -> dict[str, Any]:
    return {
        "400": _text("Invalid `Authorization` header or request"),
        "401": _text("Bearer token expected"),
        "403": _text("Bearer token invalid"),
        "500": _text("Authorization service unreachable, or the CSI call failed (`Something went wrong`)"),
    }


def _body_errors() -> dict[str, Any]:
    return {
        "413": _text("Request body above 50 MiB"),
        "415": _text("Expected request with `Content-Type: application/json`"),
    }


def _page(operation: str, summary: str, media: str) -> dict[str, Any]:
    return {
        "get": {
            "tags": ["docs"],
            "operationId": operation,
            "summary": summary,
            "responses": {"200": {"description": summary, "content": {media: _TEXT["text/plain"]}}},
        }
    }


def _csi(version: str) -> dict[str, Any]:
    function = {
        "name": "function",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": CSI_FUNCTIONS},
    }
    return {
        "post": {
            "tags": ["csi"],
            "operationId": f"csi_{version}",
            "summary": f"CSI over HTTP, {version}: call a CSI function with a batch of requests",
            "security": _SECURITY,
            "parameters": [function],
            "requestBody": {"required": True, "content": _JSON_ANY},
            "responses": {
                "200": {
                    "description": "Results (JSON), or Server-Sent Events for the `*_stream` functions",
                    "content": {**_JSON_ANY, "text/event-stream": {"schema": {"type": "string"}}},
                },
                **_auth(),
                "404": {"description": "Unknown CSI function"},
                **_body_errors(),
                "422": _text("Well-formed JSON of the wrong shape"),
            },
        }
    }


def _documents_operation(method: str, operation: str, summary: str, ok: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "tags": ["documents"],
        "operationId": operation,
        "summary": summary,
        "description": "Checks `DOCUMENTS__ADMIN_TOKEN`, not the IAM (docs/documents.md).",
        "security": _SECURITY,
        "responses": {
            **ok,
            "400": _text("Invalid name, configuration or document"),
            "401": _text("Bearer token expected"),
            "403": _text("Not the admin token, or no admin token configured"),
            "404": _text("No such index or document"),
            "409": _text("A Document Index is configured (`DOCUMENT_INDEX_URL`): no embedded index"),
            **_body_errors(),
        },
    }
    if method == "put":
        entry["requestBody"] = {"required": True, "content": _JSON_ANY}
    return entry


_COLLECTION = [_NS, {"name": "collection", "in": "path", "required": True, "schema": {"type": "string"}}]
_NO_CONTENT = {"204": {"description": "Done"}}
_JSON_OK = {"200": {"description": "The stored value", "content": _JSON_ANY}}


def _evaluation(operation: str, summary: str, ok: str, body: bool = False) -> dict[str, Any]:
    """An evaluation route (docs/evaluation.md): JSON, or JSON lines / CSV for exported results."""
    content = {**_JSON_ANY, "application/x-ndjson": _TEXT["text/plain"], "text/csv": _TEXT["text/plain"]}
    entry: dict[str, Any] = {
        "tags": ["evaluations"],
        "operationId": operation,
        "summary": summary,
        "security": _SECURITY,
        "responses": {
            ok: {"description": summary, "content": content},
            "204": {"description": "Deleted"},
            **_auth(),
            "404": _text("No such dataset or evaluation"),
            "409": _text("Conflicts with the current state"),
            **_body_errors(),
            "422": _text("Well-formed JSON of the wrong shape"),
            "503": _text("Evaluations are not available (storage unreachable or not configured)"),
        },
    }
    if body:
        entry["requestBody"] = {"required": True, "content": {**_JSON_ANY, "text/csv": _TEXT["text/plain"]}}
    return entry


def _mcp(method: str) -> dict[str, Any]:
    """The namespace's skills as an MCP server (Streamable HTTP, docs/mcp.md)."""
    entry: dict[str, Any] = {
        "tags": ["tools"],
        "operationId": f"mcp_{method}",
        "summary": "The namespace's skills as MCP tools (Streamable HTTP transport)",
        "security": _SECURITY,
        "responses": {
            "200": {"description": "JSON-RPC answer or event stream", "content": {**_JSON_ANY, **_SSE}},
            "202": {"description": "Notification accepted"},
            **_auth(),
            "404": {"description": "Namespace or session not found", "content": _EITHER},
            "405": {"description": "Method not allowed for this transport"},
            "406": {"description": "`Accept` must allow JSON and event streams", "content": _EITHER},
            **_body_errors(),
            "400": {"description": "Invalid JSON-RPC or header", "content": _EITHER},
        },
    }
    if method == "post":
        entry["requestBody"] = {"required": True, "content": _JSON_ANY}
    return entry


def evaluation_paths() -> dict[str, Any]:
    one = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "/v1/datasets": {
            "post": _evaluation("upload_dataset", "Upload a dataset (JSON lines or CSV)", "201", body=True),
            "get": _evaluation("list_datasets", "Datasets", "200"),
        },
        "/v1/datasets/{id}": {
            "parameters": one,
            "get": _evaluation("get_dataset", "A dataset", "200"),
            "delete": _evaluation("delete_dataset", "Delete a dataset", "204"),
        },
        "/v1/evaluations": {
            "post": _evaluation("start_evaluation", "Start an evaluation run", "202", body=True),
            "get": _evaluation("list_evaluations", "Evaluation runs", "200"),
        },
        "/v1/evaluations/compare": {"get": _evaluation("compare_evaluations", "Compare two runs", "200")},
        "/v1/evaluations/{id}": {
            "parameters": one,
            "get": _evaluation("get_evaluation", "An evaluation run's summary", "200"),
            "delete": _evaluation("delete_evaluation", "Cancel or delete a run", "200"),
        },
        "/v1/evaluations/{id}/results": {
            "parameters": one,
            "get": _evaluation("evaluation_results", "Per-example results", "200"),
        },
    }


def operational_paths() -> dict[str, Any]:  # long: one literal document, one entry per path
    index = {"name": "index", "in": "path", "required": True, "schema": {"type": "string"}}
    base = "/v1/documents/{namespace}/{collection}"
    health_detail = {
        "name": "detail",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "`true`: answer JSON with the numbers behind the status",
    }
    health_body = {
        **_TEXT,
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "unhealthy"]},
                    "stuck_skill_threads": {"type": "integer"},
                    "max_stuck_skill_threads": {"type": "integer"},
                },
            }
        },
    }
    return {
        **evaluation_paths(),
        "/": _page("landing", "Landing page", "text/html"),
        "/api-docs": _page("api_docs_page", "This API, rendered", "text/html"),
        "/skill.wit": _page("skill_wit", "The `pharia:skill` WIT world", "text/plain"),
        "/ui": _page("console", "The web console (docs/console.md)", "text/html"),
        "/ui/": _page("console_slash", "The web console (docs/console.md)", "text/html"),
        "/health": {
            "get": {
                "tags": ["docs"],
                "operationId": "health",
                "summary": "Liveness: `ok`",
                "parameters": [health_detail],
                "responses": {
                    "200": {"description": "Healthy", "content": health_body},
                    "503": {
                        "description": "More guests stuck in WASI than MAX_STUCK_SKILLS: replace this engine",
                        "content": health_body,
                    },
                },
            }
        },
        "/v1/mcp/{namespace}": {
            "parameters": [{**_NS, "schema": {"type": "string"}}],
            **{method: _mcp(method) for method in ("get", "post", "delete")},
        },
        "/ready": {
            "get": {
                "tags": ["docs"],
                "operationId": "ready",
                "summary": "Readiness: `ready`, or 503 `draining` once shutdown began",
                "responses": {"200": _text("Takes new work"), "503": _text("Draining: go elsewhere")},
            }
        },
        "/csi": {
            "post": {
                "tags": ["csi"],
                "operationId": "csi_legacy",
                "summary": "Legacy CSI over HTTP (`{version, function, ...}`)",
                "security": _SECURITY,
                "requestBody": {"required": True, "content": _JSON_ANY},
                "responses": {
                    "200": {"description": "Result", "content": _JSON_ANY},
                    **_auth(),
                    "400": {"description": "Unsupported version or function", "content": _EITHER},
                    "500": {"description": "The CSI call failed", "content": _EITHER},
                    **_body_errors(),
                    "422": _text("Well-formed JSON of the wrong shape"),
                },
            }
        },
        "/csi/v1/{function}": _csi("v1"),
        "/csi/v2/{function}": _csi("v2"),
        base: {
            "get": {
                **_documents_operation("get", "list_documents", "Names of the documents", _JSON_OK),
                "parameters": _COLLECTION,
            }
        },
        f"{base}/indexes/{{index}}": {
            "parameters": [*_COLLECTION, index],
            "put": _documents_operation("put", "put_index", "Create or replace an index", _NO_CONTENT),
            "get": _documents_operation("get", "get_index", "An index's configuration", _JSON_OK),
            "delete": _documents_operation("delete", "delete_index", "Delete an index", _NO_CONTENT),
        },
        f"{base}/{{name}}": {
            "parameters": [*_COLLECTION, _NAME],
            "put": _documents_operation("put", "put_document", "Store a document", _NO_CONTENT),
            "get": _documents_operation("get", "get_document", "A document", _JSON_OK),
            "delete": _documents_operation("delete", "delete_document", "Delete a document", _NO_CONTENT),
        },
        "/cached_skills": {
            "get": {
                "tags": ["skills"],
                "operationId": "cached_skills",
                "summary": "Skills in this engine's in-memory cache",
                "security": _SECURITY,
                "responses": {
                    "200": {
                        "description": "`namespace/name` of each cached skill",
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": {"type": "string"}}}
                        },
                    },
                    **_auth(),
                },
            }
        },
        "/cached_skills/{namespace}/{name}": {
            "delete": {
                "tags": ["skills"],
                "operationId": "drop_cached_skill",
                "summary": "Drop a skill from the in-memory cache",
                "security": _SECURITY,
                "parameters": [_NS, _NAME],
                "responses": {
                    "200": {
                        "description": "Whether it was cached",
                        "content": {"application/json": {"schema": {"type": "string"}}},
                    },
                    **_auth(),
                },
            }
        },
    }
