"""Leaf converters: scalars, strings, enums and `list<u8>`, plus the C helpers the others share."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import byref
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import _types

from skill_engine.runtime.boundary import held

Lower = Callable[[Any, Any, Any], None]
"""(store, value, target `wasmtime_component_val_t`) -> None"""
Lift = Callable[[Any], Any]
"""(`wasmtime_component_val_t`) -> value"""

Val = ffi.wasmtime_component_val_t
BOOL = ffi.WASMTIME_COMPONENT_BOOL.value
_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
_TUPLE = ffi.WASMTIME_COMPONENT_TUPLE.value
_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
_ENUM = ffi.WASMTIME_COMPONENT_ENUM.value
_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value

# `wasm_byte_vec_new` taking the bytes object itself: one C call, no intermediate ctypes buffer, GIL kept.
_byte_vec_new = ctypes.PYFUNCTYPE(
    None, ctypes.POINTER(ffi.wasm_byte_vec_t), ctypes.c_size_t, ctypes.c_char_p
)(("wasm_byte_vec_new", held.library))
# The C functions themselves, not wasmtime-py's Python wrappers around them (one frame less per call).
_byte_vec_delete = held.function("wasm_byte_vec_delete")
_string_at = ctypes.string_at
val_new = held.function("wasmtime_component_val_new")
val_delete = held.function("wasmtime_component_val_delete")
record_new = held.function("wasmtime_component_valrecord_new_uninit")
record_delete = held.function("wasmtime_component_valrecord_delete")
tuple_new = held.function("wasmtime_component_valtuple_new_uninit")
tuple_delete = held.function("wasmtime_component_valtuple_delete")
_list_new = held.function("wasmtime_component_vallist_new_uninit")
_list_delete = held.function("wasmtime_component_vallist_delete")
# From LARGE elements on, a list is allocated and freed with the GIL released: wasmtime initialises and
# drops every 32-byte value, ~3 s for the values of a 50 MiB input, which stalled every other request.
LARGE = 64 * 1024
_list_new_released = held.released("wasmtime_component_vallist_new_uninit")
_list_delete_released = held.released("wasmtime_component_vallist_delete")
_val_delete_released = held.released("wasmtime_component_val_delete")


def new_list(raw: Any, n: int) -> None:
    (_list_new if n < LARGE else _list_new_released)(raw, n)


def delete_list(raw: Any) -> None:
    """Frees a `wasmtime_component_vallist_t` and what it owns."""
    (_list_delete if raw.size < LARGE else _list_delete_released)(byref(raw))


def delete_value(c: Any) -> None:
    """Frees what a `wasmtime_component_val_t` owns (a large list with the GIL released)."""
    if c.kind == _LIST and c.of.list.size >= LARGE:
        _val_delete_released(byref(c))
    else:
        val_delete(byref(c))


def set_name(vec: Any, data: bytes) -> None:
    _byte_vec_new(byref(vec), len(data), data)


def read_str(vec: Any) -> str:
    size = vec.size
    text = _string_at(vec.data, size).decode("utf-8") if size else ""
    _byte_vec_delete(byref(vec))
    return text


# -- scalars -------------------------------------------------------------------------------------------

SCALARS: dict[type, tuple[int, str, type, str]] = {
    _types.Bool: (ffi.WASMTIME_COMPONENT_BOOL.value, "boolean", bool, "expected bool for Bool type"),
    _types.S8: (ffi.WASMTIME_COMPONENT_S8.value, "s8", int, "expected int for S8 type"),
    _types.S16: (ffi.WASMTIME_COMPONENT_S16.value, "s16", int, "expected int for S16 type"),
    _types.S32: (ffi.WASMTIME_COMPONENT_S32.value, "s32", int, "expected int for S32 type"),
    _types.S64: (ffi.WASMTIME_COMPONENT_S64.value, "s64", int, "expected int for S64 type"),
    _types.U8: (ffi.WASMTIME_COMPONENT_U8.value, "u8", int, "expected int for U8 type"),
    _types.U16: (ffi.WASMTIME_COMPONENT_U16.value, "u16", int, "expected int for U16 type"),
    _types.U32: (ffi.WASMTIME_COMPONENT_U32.value, "u32", int, "expected int for U32 type"),
    _types.U64: (ffi.WASMTIME_COMPONENT_U64.value, "u64", int, "expected int for U64 type"),
    _types.F32: (ffi.WASMTIME_COMPONENT_F32.value, "f32", float, "expected float for F32 type"),
    _types.F64: (ffi.WASMTIME_COMPONENT_F64.value, "f64", float, "expected float for F64 type"),
}


def scalar_lower(kind: int, name: str, pytype: type, message: str) -> Lower:
    def lower(_store: Any, val: Any, c: Any) -> None:
        if not isinstance(val, pytype):
            raise TypeError(message)
        c.kind = kind
        setattr(c.of, name, val)

    return lower


def scalar_lift(name: str, pytype: type) -> Lift:
    def lift(c: Any) -> Any:
        return pytype(getattr(c.of, name))

    return lift


def lower_string(_store: Any, val: Any, c: Any) -> None:
    if not isinstance(val, str):
        raise TypeError("expected string type")
    data = val.encode("utf-8")
    c.kind = _STRING
    _byte_vec_new(byref(c.of.string), len(data), data)


def lift_string(c: Any) -> str:
    return read_str(c.of.string)


# -- list<u8> (wasmtime_fixes.py, fix 3) ------------------------------------------------------------

_VAL_SIZE = ctypes.sizeof(Val)
_PAYLOAD_OFFSET = Val.of.offset
_KIND_U8 = ffi.WASMTIME_COMPONENT_U8.value
_CHUNK = 64 * 1024
"""Bytes converted per step. Each step is two short C calls holding the GIL (~1 ms); between steps the
event loop gets the GIL back, so a large output does not stall other requests."""


def _values(base: int, n: int) -> memoryview:
    """The value array of a `list<u8>` as flat bytes, without copying it."""
    return memoryview((ctypes.c_char * (n * _VAL_SIZE)).from_address(base)).cast("B")


def lower_bytes(val: bytes | bytearray, c: Any) -> None:
    """A `list<u8>` written with strided slices instead of one 32-byte value struct per byte in Python."""
    n = len(val)
    raw = ffi.wasmtime_component_vallist_t()
    new_list(raw, n)
    if n:
        base = ctypes.addressof(raw.data.contents)
        ctypes.memset(base, 0, n * _VAL_SIZE)  # a foreign call: runs without the GIL
        values = _values(base, n)
        kinds = bytes([_KIND_U8]) * min(n, _CHUNK)
        source = memoryview(val)
        # Written in place, step by step: no second buffer of 32 bytes per input byte.
        for start in range(0, n, _CHUNK):
            m = min(_CHUNK, n - start)
            first = start * _VAL_SIZE
            end = first + m * _VAL_SIZE
            values[first:end:_VAL_SIZE] = kinds[:m]
            values[first + _PAYLOAD_OFFSET : end : _VAL_SIZE] = source[start : start + m]
        values.release()
    c.kind = _LIST
    c.of.list = raw


def lift_bytes(c: Any) -> bytes:
    assert c.kind == _LIST
    try:
        n = c.of.list.size
        if n == 0:
            return b""
        values = _values(ctypes.addressof(c.of.list.data.contents), n)
        out = bytearray(n)
        # The payload byte of every value, read in place step by step (no copy of the value array).
        for start in range(0, n, _CHUNK):
            m = min(_CHUNK, n - start)
            first = start * _VAL_SIZE + _PAYLOAD_OFFSET
            out[start : start + m] = values[first : first + m * _VAL_SIZE : _VAL_SIZE]
        values.release()
        return bytes(out)
    finally:
        # u8 values own no memory, so deleting the list frees everything.
        delete_list(c.of.list)


def lower_bytes_value(_store: Any, val: Any, c: Any) -> None:
    if not isinstance(val, bytes | bytearray):
        raise TypeError("expected bytes value")
    lower_bytes(val, c)


def lower_enum(_store: Any, val: Any, c: Any) -> None:
    if not isinstance(val, str):
        raise TypeError("expected str type")
    data = val.encode("utf-8")
    c.kind = _ENUM
    _byte_vec_new(byref(c.of.enumeration), len(data), data)


def lift_enum(c: Any) -> str:
    return read_str(c.of.enumeration)
