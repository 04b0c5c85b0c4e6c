"""The one retry policy (csi/retries.py): each backend's schedule, against an httpx transport."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import pytest

from skill_engine.csi.retries import ALEPH_ALPHA, DOCUMENT_INDEX, OPENAI, RetrySchedule


def answering(*statuses: int, headers: dict[str, str] | None = None) -> tuple[httpx.AsyncClient, list[int]]:
    seen: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(len(seen))
        status = statuses[min(len(seen) - 1, len(statuses) - 1)]
        return httpx.Response(status, headers=headers or {}, text=f"answer {len(seen)}")

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), seen


def send(schedule: RetrySchedule, client: httpx.AsyncClient) -> httpx.Response:
    return asyncio.run(schedule.send(lambda: client.get("http://backend.test/")))


def fast(schedule: RetrySchedule) -> RetrySchedule:
    return dataclasses.replace(schedule, base_delay=0.001, max_delay=0.01)


@pytest.mark.parametrize(
    ("schedule", "status", "attempts"),
    [
        (OPENAI, 500, 3),
        (OPENAI, 429, 3),
        (OPENAI, 400, 1),
        (ALEPH_ALPHA, 503, 6),
        (ALEPH_ALPHA, 500, 1),
        (DOCUMENT_INDEX, 502, 4),
        (DOCUMENT_INDEX, 404, 1),
    ],
)
def test_transient_answers_are_repeated_then_returned(
    schedule: RetrySchedule, status: int, attempts: int
) -> None:
    client, seen = answering(status)
    response = send(fast(schedule), client)
    assert len(seen) == attempts
    assert response.status_code == status
    assert response.text == f"answer {attempts}"


def test_a_good_answer_ends_the_retries() -> None:
    client, seen = answering(503, 503, 200)
    response = send(fast(ALEPH_ALPHA), client)
    assert (response.status_code, len(seen)) == (200, 3)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    client, seen = answering(429, 200, headers={"retry-after": "0.3"})
    started = time.monotonic()
    response = send(dataclasses.replace(OPENAI, base_delay=0.001), client)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3
    assert len(seen) == 2


def test_delays_double_from_the_base() -> None:
    client, _ = answering(503)
    started = time.monotonic()
    send(dataclasses.replace(ALEPH_ALPHA, retries=3, base_delay=0.05), client)
    assert time.monotonic() - started >= 0.05 + 0.1 + 0.2


def test_transport_errors_are_repeated_only_where_transient() -> None:
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    with pytest.raises(httpx.ConnectError, match="refused"):
        send(fast(OPENAI), client)
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(httpx.ConnectError, match="refused"):
        send(fast(ALEPH_ALPHA), client)  # the native API's transport errors fail at once
    assert len(calls) == 1
