"""The audit record of one invocation, filled in while it runs (names, never content).

The HTTP layer opens a record per invocation (`begin`), the CSI layer notes what the invocation touched
(`touch`, `deny`, `tokens`) through a context variable, which reaches the worker thread of a skill and
the driver coroutines it starts, and the writer (`audit_log`) appends it when the request ends.
"""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ANONYMOUS = "anonymous"


@dataclass
class AuditRecord:
    kind: str
    """`run`, `message-stream`, `csi`, `mcp`, `evaluation` (one example of a run), `evaluation-run`."""
    namespace: str | None
    skill: str | None
    function: str | None = None
    evaluation: str | None = None
    """The evaluation run an `evaluation` or `evaluation-run` record belongs to."""
    trace_id: str | None = None
    digest: str | None = None
    subject: str = ANONYMOUS
    email: str | None = None
    models: set[str] = field(default_factory=set)
    collections: set[str] = field(default_factory=set)
    documents: set[str] = field(default_factory=set)
    tools: set[str] = field(default_factory=set)
    mcp_servers: set[str] = field(default_factory=set)
    denials: list[dict[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cpu_seconds: float = 0.0
    status: int | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    _clock: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "time": datetime.fromtimestamp(self.started, UTC).isoformat(timespec="milliseconds"),
                "trace_id": self.trace_id,
                "kind": self.kind,
                "namespace": self.namespace,
                "skill": self.skill,
                "function": self.function,
                "evaluation": self.evaluation,
                "digest": self.digest,
                "subject": self.subject,
                "email": self.email,
                "models": sorted(self.models),
                "collections": sorted(self.collections),
                "documents": sorted(self.documents),
                "tools": sorted(self.tools),
                "mcp_servers": sorted(self.mcp_servers),
                "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
                "cpu_ms": round(self.cpu_seconds * 1000, 1),
                "status": self.status,
                "error": self.error,
                "denials": list(self.denials),
                "duration_ms": round((time.monotonic() - self._clock) * 1000, 1),
            }


_current: contextvars.ContextVar[AuditRecord | None] = contextvars.ContextVar("audit_record", default=None)


def begin(record: AuditRecord) -> contextvars.Token[AuditRecord | None]:
    return _current.set(record)


def end(token: contextvars.Token[AuditRecord | None]) -> None:
    _current.reset(token)


def current() -> AuditRecord | None:
    return _current.get()


_SETS = {"model": "models", "collection": "collections", "document": "documents", "tool": "tools"}


def touch(kind: str, name: str) -> None:
    """Notes that the current invocation used `name` (model, collection, document, tool, MCP server)."""
    record = _current.get()
    if record is None:
        return
    with record._lock:
        getattr(record, _SETS.get(kind, "mcp_servers")).add(name)


def deny(kind: str, name: str) -> None:
    record = _current.get()
    if record is None:
        return
    with record._lock:
        record.denials.append({"kind": kind, "name": name})


def tokens(prompt: int, completion: int) -> None:
    record = _current.get()
    if record is None:
        return
    with record._lock:
        record.prompt_tokens += prompt
        record.completion_tokens += completion


def identify(subject: str | None, email: str | None) -> None:
    record = _current.get()
    if record is not None:
        record.subject = subject or ANONYMOUS
        record.email = email


def ran(digest: str | None = None, cpu_seconds: float | None = None) -> None:
    """The component that ran and the CPU time it used."""
    record = _current.get()
    if record is None:
        return
    with record._lock:
        if digest is not None:
            record.digest = digest
        if cpu_seconds is not None:
            record.cpu_seconds += cpu_seconds


def failed(error_kind: str) -> None:
    record = _current.get()
    if record is not None and record.error is None:
        record.error = error_kind


def evaluating(namespace: str, skill: str, run_id: str) -> tuple[str, str | None] | None:
    """The request starting an evaluation run: what it evaluates. Returns the caller (`subject`,
    `email`) for the run's own records, None when nothing is audited."""
    record = _current.get()
    if record is None:
        return None
    record.namespace, record.skill, record.evaluation = namespace, skill, run_id
    return record.subject, record.email


def answered(status: int, error_kind: str | None, trace_id: str | None) -> None:
    """An invocation without HTTP (an evaluation example): its outcome, as the middleware would note it."""
    record = _current.get()
    if record is not None:
        record.status, record.error = status, error_kind
        record.trace_id = trace_id or record.trace_id


def acting_for(namespace: str) -> None:
    """CSI over HTTP: the namespace the caller named."""
    record = _current.get()
    if record is not None and record.namespace is None:
        record.namespace = namespace
