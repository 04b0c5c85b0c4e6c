"""What every CSI call shares: who is calling, the stream protocol, and fanning a batch out.

Drivers, their GenAI spans (`csi.genai`), the runtime and the HTTP routes all import this module; it
imports nothing of the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from skill_engine.csi.fanout import fan_out as fan_out  # bounded batches (csi/fanout.py), re-exported

In = TypeVar("In")
Ev = TypeVar("Ev", covariant=True)


class EventStream(Protocol[Ev]):
    async def next(self) -> Ev | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CsiContext:
    """Who is calling: drivers use it for credentials, logs and traces."""

    namespace: str
    skill: str
    token: str | None = None
    over_http: bool = False
    """CSI over HTTP: `namespace` is the one the caller named (or empty); the default policy applies too."""
