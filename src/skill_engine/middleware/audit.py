"""Opens one audit record per invocation (skill run, message stream, CSI over HTTP call, MCP call, the
start of an evaluation run) and writes it to the audit trail when the response has been sent
(docs/governance.md).

Sits inside the telemetry middleware (so the record carries the request's trace id) and outside
authentication (so refused callers are recorded too; the IAM's answer names the caller).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skill_engine.governance import audit
from skill_engine.governance.audit_log import AuditLog
from skill_engine.telemetry.tracing import current_trace_id

_SKILL = re.compile(r"^/v1/skills/([^/]+)/([^/]+)/(run|message-stream)$")
_CSI = re.compile(r"^/csi(?:/v[12]/([^/]+))?$")
_MCP = re.compile(r"^/v1/mcp/([^/]+)(?:/.*)?$")


def classify(method: str, path: str) -> audit.AuditRecord | None:
    """A fresh record if `method path` is an invocation, else None."""
    if method != "POST":
        return None
    if match := _SKILL.match(path):
        return audit.AuditRecord(match[3], match[1], match[2])
    if match := _CSI.match(path):
        return audit.AuditRecord("csi", None, None, function=match[1] or "legacy")
    if match := _MCP.match(path):
        return audit.AuditRecord("mcp", match[1], None)
    if path == "/v1/evaluations":  # starting a run; its examples are recorded by the run itself
        return audit.AuditRecord("evaluation-run", None, None)
    return None


class AuditMiddleware:
    def __init__(self, app: ASGIApp, log: AuditLog | None) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        record = None
        if self.log is not None and scope["type"] == "http":
            record = classify(scope["method"], scope["path"])
        if record is None or self.log is None:
            await self.app(scope, receive, send)
            return
        record.trace_id = current_trace_id()

        async def observed(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        token = audit.begin(record)
        try:
            await self.app(scope, receive, observed)
        except BaseException:
            if record.status is None:
                record.status = 500
            raise
        finally:
            audit.end(token)
            if record.status is None:
                record.status = 499  # the client went away before an answer
            self.log.write(record.to_json())
