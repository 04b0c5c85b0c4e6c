"""Token usage of one invocation, added up while it runs, for whoever asked to know (evaluations, audit).

A `UsageMeter` is made current around an invocation; every counted inference call (`genai.count_tokens`)
also lands on it. Worker threads see it because each invocation runs in a copy of the caller's context,
and the meter itself is shared, not copied. Outside a metered invocation nothing is recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator


class UsageMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prompt = 0
        self.completion = 0
        self.models: dict[str, int] = {}

    def add(self, model: str, prompt: int, completion: int) -> None:
        with self._lock:
            self.prompt += prompt
            self.completion += completion
            self.models[model] = self.models.get(model, 0) + prompt + completion

    def to_json(self) -> dict[str, int]:
        return {"prompt": self.prompt, "completion": self.completion, "total": self.prompt + self.completion}


_meter: contextvars.ContextVar[UsageMeter | None] = contextvars.ContextVar("skill_engine_usage", default=None)


@contextlib.contextmanager
def metered() -> Iterator[UsageMeter]:
    meter = UsageMeter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def record(model: str, prompt: int, completion: int) -> None:
    meter = _meter.get()
    if meter is not None:
        meter.add(model, prompt, completion)
