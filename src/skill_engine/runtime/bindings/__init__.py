"""Host bindings: one module per `pharia:skill` WIT line, all calling the same version-independent drivers.

A binding module converts wasm values (wasmtime's dynamic `Record`/`Variant` layer) to the dataclasses in
`skill_engine.csi.types` and back. It registers its imports on the shared Linker and names its exports.
Host imports run on the worker thread that called into wasm, so the current invocation is a thread-local.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from wasmtime.component import LinkerInstance, Record

from skill_engine import telemetry
from skill_engine.csi.errors import CsiError, NotImplementedCsiError
from skill_engine.runtime.invocation import Invocation

T = TypeVar("T")
log = logging.getLogger("skill_engine.csi")


class _Current(threading.local):
    invocation: Invocation | None = None


_current = _Current()


class CsiUseOutsideRun(Exception):
    """A CSI function was called where none is allowed (e.g. from `metadata()`)."""


def bind_invocation(invocation: Invocation | None) -> None:
    _current.invocation = invocation


def current_or_none() -> Invocation | None:
    return _current.invocation


def current() -> Invocation:
    invocation = _current.invocation
    if invocation is None or not invocation.csi_allowed:
        raise CsiUseOutsideRun("CSI function called outside of a skill run")
    return invocation


def count_csi(function: str, requests: int = 1) -> None:
    """`kernel_csi_requests_total{function}`: a batch counts as its size."""
    telemetry.current().metrics.csi_request(function, requests)


def call_driver(function: str, coro: Coroutine[Any, Any, T], requests: int | None = None) -> T:
    """Runs a driver coroutine for the current invocation; failures end the invocation.

    `requests`: how many CSI requests this call carries (batch size), counted in the CSI metric; None for
    calls that are not requests of their own (e.g. `chat-stream.next`).
    """
    try:
        invocation = current()
    except CsiUseOutsideRun:
        coro.close()
        raise
    if requests is not None:
        count_csi(function, requests)
    try:
        return invocation.call(function, coro)
    except CsiError as e:
        log.warning(
            "CSI function %s failed: %s",
            function,
            e,
            extra={"skill": f"{invocation.ctx.namespace}/{invocation.ctx.skill}"},
        )
        raise


def not_provided(function: str) -> Callable[..., Any]:
    """A host import this engine does not implement yet: ends the invocation naming the function."""

    def host(_store: Any, *_args: Any) -> Any:
        invocation = current()
        error = invocation.fail(function, NotImplementedCsiError(function))
        log.warning("CSI function %s is not provided yet", function)
        raise error

    return host


def record(**fields: Any) -> Record:
    """Builds a wasm record; keyword names use `_` where WIT uses `-`."""
    value = Record()
    for name, field_value in fields.items():
        setattr(value, name.replace("_", "-"), field_value)
    return value


def field(value: Any, name: str) -> Any:
    """Reads a record field by its WIT (kebab-case) name."""
    return getattr(value, name)


def add_functions(instance: LinkerInstance, functions: dict[str, Callable[..., Any]]) -> None:
    for name, function in functions.items():
        instance.add_func(name, function)
