"""Host bindings: one host object per `pharia:skill` WIT line, all calling the same version-independent
drivers.

Each line's module defines a class (`Host03`, `Host04`, `Host02`) with one method per WIT function; the
method converts wasm values (wasmtime's dynamic `Record`/`Variant` layer) to the dataclasses in
`skill_engine.csi.types`, calls the driver through `call_driver`, and converts the answer back. Its
`interfaces()` names each WIT function next to the method that implements it; `define` puts them on the
Linker. Host imports run on the worker thread that called into wasm, so the current invocation is a
thread-local.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from wasmtime.component import Linker, Record, ResourceType

from skill_engine import telemetry
from skill_engine.csi.errors import CsiError
from skill_engine.runtime.invocation import Invocation
from skill_engine.runtime.readahead import NOT_READY, ReadAhead

T = TypeVar("T")
HostFunc = Callable[..., Any]
log = logging.getLogger("skill_engine.csi")
PACKAGE = "pharia:skill"

CHAT_STREAM_TYPE = 31
COMPLETION_STREAM_TYPE = 32
STREAM_OUTPUT_TYPE = 33
"""Host resource type ids; every line shares them (and `drop_resource`)."""


class _Current(threading.local):
    invocation: Invocation | None = None


_current = _Current()


class CsiUseOutsideRun(Exception):
    """A CSI function was called where none is allowed (e.g. from `metadata()`)."""


def bind_invocation(invocation: Invocation | None) -> None:
    _current.invocation = invocation


def current() -> Invocation:
    invocation = _current.invocation
    if invocation is None or not invocation.csi_allowed:
        raise CsiUseOutsideRun("CSI function called outside of a skill run")
    return invocation


def call_driver(function: str, coro: Coroutine[Any, Any, T], requests: int | None) -> T:
    """Runs a driver coroutine for the current invocation; failures end the invocation.

    `requests`: how many CSI requests this call carries (a batch counts as its size), counted in
    `kernel_csi_requests_total{function}`; None only for calls that are not requests of their own
    (`chat-stream.next`). It has no default so that no WIT function forgets to count.
    """
    try:
        invocation = current()
    except CsiUseOutsideRun:
        coro.close()
        raise
    if requests is not None:
        telemetry.current().metrics.csi_request(function, requests)
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


def open_stream(function: str, open_: Callable[[], Coroutine[Any, Any, Any]]) -> ReadAhead:
    """Opens an upstream stream for the current invocation and starts reading it ahead on the loop."""

    async def opened() -> ReadAhead:
        stream = ReadAhead(await open_(), asyncio.get_running_loop())
        stream.start()
        return stream

    return call_driver(function, opened(), 1)


def next_event(function: str, stream: Any) -> Any:
    """The stream's next event: taken from the read-ahead buffer when there is one, else waited for."""
    if isinstance(stream, ReadAhead):
        event = stream.ready()
        if event is not NOT_READY:
            return event
    return call_driver(function, stream.next(), None)


def drop_resource(_store: Any, rep: int) -> None:
    """Destructor of every host resource: closes what the invocation keeps under `rep`."""
    invocation = _current.invocation
    if invocation is None:
        return
    resource = invocation.resources.pop(rep, None)
    close = getattr(resource, "close", None)
    if close is not None:
        close()


def record(**fields: Any) -> Record:
    """Builds a wasm record; keyword names use `_` where WIT uses `-`."""
    value = Record()
    for name, field_value in fields.items():
        setattr(value, name.replace("_", "-"), field_value)
    return value


def field(value: Any, name: str) -> Any:
    """Reads a record field by its WIT (kebab-case) name."""
    return getattr(value, name)


@dataclass(frozen=True)
class Interface:
    """One WIT interface of a line: its functions by WIT name, and its host resources with their type id."""

    functions: Mapping[str, HostFunc]
    resources: Mapping[str, int] | None = None


def define(linker: Linker, semver: str, interfaces: Mapping[str, Interface]) -> None:
    """Defines `pharia:skill/<name>@<semver>` for each interface (resources first: functions use them)."""
    with linker.root() as root:
        for name, interface in interfaces.items():
            with root.add_instance(f"{PACKAGE}/{name}@{semver}") as instance:
                for resource, type_id in (interface.resources or {}).items():
                    instance.add_resource(resource, ResourceType.host(type_id), drop_resource)
                for function_name, function in interface.functions.items():
                    instance.add_func(function_name, function)
