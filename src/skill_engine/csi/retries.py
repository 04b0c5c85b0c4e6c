"""One retry policy for the HTTP backends of the CSI drivers (tenacity), with each client's schedule as data.

A schedule says how often a request is repeated, how the pause grows (doubling from `base_delay`, capped at
`max_delay`), whether the server's `Retry-After` counts, and which answers and transport errors are
transient. `send` returns the last response (the caller maps its status) or raises the last transport
error (the caller words it); only what the schedule calls transient is repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)

log = logging.getLogger("skill_engine.csi")


@dataclass(frozen=True)
class RetrySchedule:
    retries: int
    """Repetitions after the first attempt."""
    base_delay: float
    """Seconds before the first repetition; doubled for each further one."""
    transient_status: Callable[[int], bool]
    transient_errors: tuple[type[Exception], ...] = ()
    max_delay: float = float("inf")
    retry_after: bool = False
    """Honour the server's `Retry-After` seconds (still capped at `max_delay`)."""
    name: str | None = None
    """Named in a log line at each repetition (None: repetitions are not logged)."""

    def delay(self, state: RetryCallState) -> float:
        """Seconds before the next attempt (tenacity's `wait`)."""
        if self.retry_after and state.outcome is not None and not state.outcome.failed:
            header = state.outcome.result().headers.get("retry-after")
            if header is not None:
                try:
                    return min(max(float(header), 0.0), self.max_delay)
                except ValueError:
                    pass
        return float(min(self.base_delay * 2 ** (state.attempt_number - 1), self.max_delay))

    def _transient_response(self, response: httpx.Response) -> bool:
        return self.transient_status(response.status_code)

    def _before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        if outcome is None or self.name is None:
            return
        if outcome.failed:
            log.info("%s unreachable (%s), retrying", self.name, type(outcome.exception()).__name__)
        else:
            log.info("%s answered %s, retrying", self.name, outcome.result().status_code)

    async def send(self, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        """Calls `request` until it answers with a non-transient status or the retries are used up."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self.delay,
            retry=retry_if_exception_type(self.transient_errors) | retry_if_result(self._transient_response),
            before_sleep=self._before_sleep,
            retry_error_callback=_last_outcome,
            reraise=True,
        )

        async def attempt() -> httpx.Response:  # tenacity awaits only coroutine functions
            return await request()

        response: httpx.Response = await retrying(attempt)
        return response


def _last_outcome(state: RetryCallState) -> httpx.Response:
    """Retries used up: the last response as it is, or the last transport error raised."""
    assert state.outcome is not None
    response: httpx.Response = state.outcome.result()
    return response


OPENAI = RetrySchedule(
    retries=2,
    base_delay=0.5,
    max_delay=8.0,
    retry_after=True,
    transient_status=lambda status: status in (408, 409, 429) or status >= 500,
    transient_errors=(httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError),
)
"""Like the OpenAI client library (engine-spec §3.4): 408, 409, 429, 5xx and connection failures are
retried twice with exponential backoff from 0.5 s, honouring `Retry-After` up to 8 s."""

ALEPH_ALPHA = RetrySchedule(
    retries=5,
    base_delay=0.5,
    transient_status=lambda status: status in (429, 503),
)
"""The native API's busy (429) and unavailable (503) answers, five times from 0.5 s; transport errors fail."""

DOCUMENT_INDEX = RetrySchedule(
    retries=3,
    base_delay=0.25,
    transient_status=lambda status: status in (408, 429) or status >= 500,
    transient_errors=(httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError),
    name="Document Index",
)
"""Timeouts, unreachable, 408, 429 and 5xx: three times from 0.25 s."""
