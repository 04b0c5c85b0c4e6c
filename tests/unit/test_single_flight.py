"""One in-flight call per key, shared by concurrent callers (skill_engine/single_flight.py)."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from skill_engine.single_flight import SingleFlight


def test_concurrent_callers_share_one_call_and_later_ones_start_anew() -> None:
    calls: list[str] = []

    async def main() -> None:
        flight: SingleFlight[str, str] = SingleFlight()

        async def work(key: str) -> str:
            calls.append(key)
            await asyncio.sleep(0.05)
            return key.upper()

        results = await asyncio.gather(*(flight.run(k, partial(work, k)) for k in ["a", "a", "b", "a"]))
        assert results == ["A", "A", "B", "A"]
        assert len(flight) == 0
        assert await flight.run("a", lambda: work("a")) == "A"

    asyncio.run(main())
    assert calls == ["a", "b", "a"]


def test_a_caller_going_away_does_not_cancel_the_call_for_the_others() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()

        async def slow() -> int:
            await asyncio.sleep(0.1)
            return 7

        first = asyncio.ensure_future(flight.run("k", slow))
        second = asyncio.ensure_future(flight.run("k", slow))
        await asyncio.sleep(0.01)
        first.cancel()
        assert await second == 7
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(main())


def test_a_failure_reaches_every_waiter_and_is_not_remembered() -> None:
    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()

        async def failing() -> int:
            await asyncio.sleep(0.01)
            raise ValueError("backend down")

        outcomes = await asyncio.gather(
            flight.run("k", failing), flight.run("k", failing), return_exceptions=True
        )
        assert [str(o) for o in outcomes] == ["backend down", "backend down"]
        assert not flight.in_flight("k")

    asyncio.run(main())
