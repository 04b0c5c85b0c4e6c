"""Work deferred until after a response: in order, after the app returned, and at once outside a request."""

from __future__ import annotations

from skill_engine.telemetry import after_response


def test_deferred_work_runs_at_the_end_in_order() -> None:
    ran: list[str] = []
    deferred, token = after_response.begin()
    after_response.after_response(lambda: ran.append("first"))
    after_response.after_response(lambda: ran.append("second"))
    assert ran == []
    after_response.end(deferred, token)
    assert ran == ["first", "second"]


def test_outside_a_request_and_after_the_end_it_runs_at_once() -> None:
    ran: list[str] = []
    after_response.after_response(lambda: ran.append("outside"))
    assert ran == ["outside"]
    deferred, token = after_response.begin()
    after_response.end(deferred, token)
    deferred.add(lambda: ran.append("late"))  # e.g. a background task that inherited the context
    assert ran == ["outside", "late"]


def test_a_failing_task_does_not_stop_the_others() -> None:
    ran: list[str] = []
    deferred, token = after_response.begin()

    def fail() -> None:
        raise RuntimeError("boom")

    after_response.after_response(fail)
    after_response.after_response(lambda: ran.append("after"))
    after_response.end(deferred, token)
    assert ran == ["after"]
