"""`borrow<T>` parameters of host functions (every resource method's `self`) without two wrapper objects.

Stock wasmtime-py lifts a borrow into a `ResourceAny` (a `Managed` object with a finaliser); a binding
turns it into its host resource with `to_host(store)`, a second `Managed` object, and reads `.rep`, one
more C call; both objects are freed by their finalisers. A stream event makes two such method calls
(`chat-stream.next`, `stream-output.write`), so this was ~15% of the guest thread's host work per event
(py-spy, bench/RESULTS.md "Session 11"). `Borrowed` does the same C calls in one step and is a plain
object: `to_host(store)` converts through `wasmtime_component_resource_any_to_host` (which checks the
handle, exactly as before), keeps `rep` and `type`, frees both C handles at once and returns itself, so
bindings written against stock wasmtime-py (`self_.to_host(store).rep`) work unchanged.
"""

from __future__ import annotations

import ctypes
from ctypes import byref
from typing import Any

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi

from skill_engine.runtime.boundary import held

_RESOURCE = ffi.WASMTIME_COMPONENT_RESOURCE.value
_HostPtr = ctypes.POINTER(ffi.wasmtime_component_resource_host_t)


# The `resource_any` handle is passed as a plain address (`lift_borrow` takes it out of the value).
_to_host = held.function(
    "wasmtime_component_resource_any_to_host",
    [ctypes.POINTER(ffi.wasmtime_context_t), ctypes.c_void_p, ctypes.POINTER(_HostPtr)],
)
_any_delete = held.function("wasmtime_component_resource_any_delete", [ctypes.c_void_p])
_host_rep = held.function("wasmtime_component_resource_host_rep")
_host_type = held.function("wasmtime_component_resource_host_type")
_host_delete = held.function("wasmtime_component_resource_host_delete")
_address = ctypes.addressof
_word = ctypes.c_void_p.from_address


class Borrowed:
    """A borrowed resource handed to a host function. `to_host(store)` answers this object with the host
    resource's `rep` and `type` (what stock `ResourceAny.to_host` answers as a `ResourceHost`)."""

    __slots__ = ("_handle", "rep", "type")

    def __init__(self, handle: int) -> None:
        self._handle: int | None = handle
        self.rep = -1
        self.type = -1

    def to_host(self, store: Any) -> Borrowed:
        handle = self._handle
        if handle is None:
            return self
        out = _HostPtr()
        error = _to_host(store._context(), handle, byref(out))
        if error:
            raise WasmtimeError._from_ptr(error)
        self.rep = _host_rep(out)
        self.type = _host_type(out)
        _host_delete(out)
        self._handle = None
        _any_delete(handle)
        return self

    def __del__(self, _delete: Any = _any_delete) -> None:
        # A binding that never converted its borrow: free the handle (bound as a default for exit time).
        handle = self._handle
        if handle is not None:
            self._handle = None
            _delete(handle)


def lift_borrow(c: Any) -> Borrowed:
    """Takes the handle out of the value (as stock `take_pointer`), so wasmtime's drop of the arguments
    does not free it a second time."""
    if c.kind != _RESOURCE:
        raise TypeError("expected a resource handle")
    slot = _word(_address(c.of))
    handle = slot.value
    if not handle:
        raise TypeError("expected a resource handle")
    slot.value = None
    return Borrowed(handle)
