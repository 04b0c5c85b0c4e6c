"""libwasmtime's data-only C functions, called without releasing the GIL (fix 7, `runtime/wasmtime_fixes.py`).

ctypes releases the GIL around every call into a `CDLL`, which is right for a call that runs guest code
and wrong for one that takes a few hundred nanoseconds: when other threads wait for the GIL (the event
loop, the guest threads of other streams) each release wakes one of them, and the caller waits to get it
back. A stream event crossed the boundary with ~30 such calls (value constructors, destructors, type
comparisons, resource handles); with 8 streams the engine switched threads ~14 times per event, half of
its CPU (bench/RESULTS.md, "Session 7"). Through a `PyDLL` the same functions keep the GIL.

Only functions that return promptly and never run guest code or call back into Python qualify (`HELD`):
values and their containers, type queries, resource handles (not `resource_any_drop`, which may run a
guest destructor), errors, the store's context pointer, the epoch tick (an atomic increment). Calling
into the guest, instantiating, compiling, deserialising and deleting a store keep releasing the GIL, so
the loop and other guests run meanwhile.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any

from wasmtime import _bindings
from wasmtime import _ffi as ffi

HELD = re.compile(
    r"wasm_byte_vec_(new|new_empty|new_uninitialized|copy|delete)$"
    r"|wasm_name_"
    r"|wasmtime_component_val"
    r"|wasmtime_component_(func|record|list|tuple|variant|enum|option|result|flags|resource|future|stream)_type_"
    r"|wasmtime_component_resource_(any|host)_"
    r"|wasmtime_error_(new|message|delete|exit_status|wasm_trace)$"
    r"|wasmtime_store_context$"
    r"|wasmtime_engine_increment_epoch$"
)
"""C function names that qualify (matched from the start; any name containing `drop` never does)."""

library = ctypes.PyDLL(ffi.dll._name)
_FUNCTION: type = type(library.wasm_byte_vec_new).__mro__[1]
"""The class of ctypes' foreign function objects (`ctypes._CFuncPtr` is not exported)."""


def holds(name: str) -> bool:
    """Whether the C function `name` is called with the GIL held."""
    return HELD.match(name) is not None and "drop" not in name


def function(name: str, argtypes: list[Any] | None = None) -> Any:
    """The GIL-holding twin of `_bindings._<name>`: same result type, and the same argument types unless
    `argtypes` replaces them (e.g. a handle passed as a plain address)."""
    stock = getattr(_bindings, f"_{name}")
    twin = library[name]
    twin.argtypes = stock.argtypes if argtypes is None else argtypes
    twin.restype = stock.restype
    return twin


def released(name: str) -> Any:
    """The GIL-releasing (stock `CDLL`) handle of a data function, for a call whose cost grows with its value:
    allocating or freeing a `list<u8>` of 50 MiB takes seconds, during which other threads must run."""
    like = getattr(_bindings, f"_{name}")
    handle = ffi.dll[name]  # `[]` makes a new function object: the bindings' own stays as it is
    handle.argtypes = like.argtypes
    handle.restype = like.restype
    return handle


def twins() -> dict[str, Any]:
    """`_bindings` attribute name -> GIL-holding twin, for every qualifying function of the bindings."""
    return {
        attribute: function(attribute[1:])
        for attribute, value in vars(_bindings).items()
        if attribute.startswith("_") and isinstance(value, _FUNCTION) and holds(attribute[1:])
    }
