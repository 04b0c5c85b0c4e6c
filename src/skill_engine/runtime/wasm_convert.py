"""Converters between Python values and wasmtime's C component values, built once per value type.

wasmtime-py's `ValType.convert_to_c`/`convert_from_c` walk the type through the C API for every value:
a record asks for its fields, a variant for its cases, an untagged option or result collects the Python
classes of each case, all again for every element of a list. `lowerer(ty)` and `lifter(ty)` do that walk
once and return plain closures; the values they produce and accept are exactly stock wasmtime-py's
(`Record`, `Variant`, `None` for `none`, `bytes` for `list<u8>`, ...), with the same type errors.
A lowerer writes into a `wasmtime_component_val_t` (not a pointer to one), a lifter reads one and frees
what it owned, as the stock methods do. Types without a fast path (flags, resources, futures, ...) keep
the stock methods.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import byref
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import _types
from wasmtime.component._types import Record, Variant

Lower = Callable[[Any, Any, Any], None]
"""(store, value, target `wasmtime_component_val_t`) -> None"""
Lift = Callable[[Any], Any]
"""(`wasmtime_component_val_t`) -> value"""

_Val = ffi.wasmtime_component_val_t
_BOOL = ffi.WASMTIME_COMPONENT_BOOL.value
_STRING = ffi.WASMTIME_COMPONENT_STRING.value
_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
_TUPLE = ffi.WASMTIME_COMPONENT_TUPLE.value
_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
_ENUM = ffi.WASMTIME_COMPONENT_ENUM.value
_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value

# `wasm_byte_vec_new` taking the bytes object itself: one C call, no intermediate ctypes buffer.
_byte_vec_new = ctypes.CFUNCTYPE(None, ctypes.POINTER(ffi.wasm_byte_vec_t), ctypes.c_size_t, ctypes.c_char_p)(
    ("wasm_byte_vec_new", ffi.dll)
)
_byte_vec_delete = ffi.wasm_byte_vec_delete
_string_at = ctypes.string_at
_val_new = ffi.wasmtime_component_val_new
_val_delete = ffi.wasmtime_component_val_delete


def _set_name(vec: Any, data: bytes) -> None:
    _byte_vec_new(byref(vec), len(data), data)


def _read_str(vec: Any) -> str:
    size = vec.size
    text = _string_at(vec.data, size).decode("utf-8") if size else ""
    _byte_vec_delete(byref(vec))
    return text


# -- scalars -------------------------------------------------------------------------------------------

_SCALARS: dict[type, tuple[int, str, type, str]] = {
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


def _scalar_lower(kind: int, name: str, pytype: type, message: str) -> Lower:
    def lower(_store: Any, val: Any, c: Any) -> None:
        if not isinstance(val, pytype):
            raise TypeError(message)
        c.kind = kind
        setattr(c.of, name, val)

    return lower


def _scalar_lift(name: str, pytype: type) -> Lift:
    def lift(c: Any) -> Any:
        return pytype(getattr(c.of, name))

    return lift


def _lower_string(_store: Any, val: Any, c: Any) -> None:
    if not isinstance(val, str):
        raise TypeError("expected string type")
    data = val.encode("utf-8")
    c.kind = _STRING
    _byte_vec_new(byref(c.of.string), len(data), data)


def _lift_string(c: Any) -> str:
    return _read_str(c.of.string)


# -- list<u8> (wasmtime_fixes.py, fix 3) ------------------------------------------------------------

_VAL_SIZE = ctypes.sizeof(_Val)
_PAYLOAD_OFFSET = _Val.of.offset
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
    ffi.wasmtime_component_vallist_new_uninit(raw, n)
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
        ffi.wasmtime_component_vallist_delete(byref(c.of.list))


def _lower_bytes(_store: Any, val: Any, c: Any) -> None:
    if not isinstance(val, bytes | bytearray):
        raise TypeError("expected bytes value")
    lower_bytes(val, c)


# -- compound types --------------------------------------------------------------------------------


def _lower_record(ty: Any) -> Lower:
    fields = [(name, name.encode("utf-8"), lowerer(field)) for name, field in ty.fields]
    n = len(fields)

    def lower(store: Any, val: Any, c: Any) -> None:
        raw = ffi.wasmtime_component_valrecord_t()
        ffi.wasmtime_component_valrecord_new_uninit(raw, n)
        data = raw.data
        i = 0
        try:
            for name, encoded, lower_field in fields:
                entry = data[i]
                _set_name(entry.name, encoded)
                lower_field(store, getattr(val, name), entry.val)
                i += 1
        except BaseException:
            for j in range(i, n):
                entry = data[j]
                entry.val.kind = _BOOL
                entry.val.of.boolean = False
                if j > i:
                    ffi.wasm_byte_vec_new_empty(byref(entry.name))
            ffi.wasmtime_component_valrecord_delete(byref(raw))
            raise
        c.kind = _RECORD
        c.of.record = raw

    return lower


def _lift_record(ty: Any) -> Lift:
    fields = [(name, lifter(field)) for name, field in ty.fields]

    def lift(c: Any) -> Any:
        record = c.of.record
        try:
            ret = Record()
            data = record.data
            for i, (name, lift_field) in zip(range(record.size), fields, strict=False):
                inner = data[i].val  # names are freed with the record below
                setattr(ret, name, lift_field(inner))
                inner.kind = _BOOL
                inner.of.boolean = False
            return ret
        finally:
            ffi.wasmtime_component_valrecord_delete(byref(record))

    return lift


def _lower_list(element: Lower) -> Lower:
    def lower(store: Any, val: Any, c: Any) -> None:
        if not isinstance(val, list):
            raise TypeError("expected list value")
        n = len(val)
        raw = ffi.wasmtime_component_vallist_t()
        ffi.wasmtime_component_vallist_new_uninit(raw, n)
        data = raw.data
        i = 0
        try:
            for e in val:
                element(store, e, data[i])
                i += 1
        except BaseException:
            for j in range(i, n):
                data[j].kind = _BOOL
                data[j].of.boolean = False
            ffi.wasmtime_component_vallist_delete(byref(raw))
            raise
        c.kind = _LIST
        c.of.list = raw

    return lower


def _lift_list(element: Lift) -> Lift:
    def lift(c: Any) -> Any:
        raw = c.of.list
        try:
            data = raw.data
            out = []
            for i in range(raw.size):
                inner = data[i]
                out.append(element(inner))
                inner.kind = _BOOL
                inner.of.boolean = False
            return out
        finally:
            ffi.wasmtime_component_vallist_delete(byref(raw))

    return lift


def _lower_tuple(ty: Any) -> Lower:
    elements = [lowerer(e) for e in ty.elements]
    n = len(elements)

    def lower(store: Any, val: Any, c: Any) -> None:
        if not isinstance(val, tuple):
            raise TypeError("expected tuple type")
        if len(val) != n:
            raise TypeError("tuple length mismatch")
        raw = ffi.wasmtime_component_valtuple_t()
        ffi.wasmtime_component_valtuple_new_uninit(raw, n)
        data = raw.data
        i = 0
        try:
            for lower_element, e in zip(elements, val, strict=True):
                lower_element(store, e, data[i])
                i += 1
        except BaseException:
            for j in range(i, n):
                data[j].kind = _BOOL
                data[j].of.boolean = False
            ffi.wasmtime_component_valtuple_delete(byref(raw))
            raise
        c.kind = _TUPLE
        c.of.tuple = raw

    return lower


def _lift_tuple(ty: Any) -> Lift:
    elements = [lifter(e) for e in ty.elements]

    def lift(c: Any) -> Any:
        raw = c.of.tuple
        try:
            data = raw.data
            out = []
            for i, lift_element in zip(range(raw.size), elements, strict=False):
                inner = data[i]
                out.append(lift_element(inner))
                inner.kind = _BOOL
                inner.of.boolean = False
            return tuple(out)
        finally:
            ffi.wasmtime_component_valtuple_delete(byref(raw))

    return lift


def _lower_enum(_store: Any, val: Any, c: Any) -> None:
    if not isinstance(val, str):
        raise TypeError("expected str type")
    data = val.encode("utf-8")
    c.kind = _ENUM
    _byte_vec_new(byref(c.of.enumeration), len(data), data)


def _lift_enum(c: Any) -> str:
    return _read_str(c.of.enumeration)


# -- variants, options, results --------------------------------------------------------------------


def _case_chooser(ty: Any) -> Callable[[Any, Any], tuple[str, Any]]:
    """Returns `choose(store, value) -> (case name, heap-allocated payload or None)`, as stock `_lower`."""
    tagged = ty._tagged()
    cases: list[tuple[str, tuple[type, ...] | None, Lower | None]] = []
    by_tag: dict[str, Lower | None] = {}
    for name, case_ty in ty._cases():
        if case_ty is None:
            cases.append((name, None, None))
            by_tag.setdefault(name, None)
        else:
            classes: set[type] = set()
            case_ty.add_classes(classes)
            lower = lowerer(case_ty)
            cases.append((name, tuple(classes), lower))
            by_tag.setdefault(name, lower)

    def boxed(store: Any, lower: Lower, payload: Any) -> Any:
        raw = _Val()
        lower(store, payload, raw)
        return _val_new(byref(raw))

    if tagged:

        def choose(store: Any, val: Any) -> tuple[str, Any]:
            if not isinstance(val, Variant):
                raise TypeError("expected Variant type")
            tag = val.tag
            if tag not in by_tag:
                raise ValueError("value not valid for this variant")
            lower = by_tag[tag]
            if lower is None:
                return tag, None
            return tag, boxed(store, lower, val.payload)

        return choose

    def choose_untagged(store: Any, val: Any) -> tuple[str, Any]:
        for name, classes, lower in cases:
            if classes is None:
                if val is None:
                    return name, None
            elif isinstance(val, classes):
                assert lower is not None
                return name, boxed(store, lower, val)
        raise ValueError("value not valid for this variant")

    return choose_untagged


def _case_lifter(ty: Any) -> Callable[[str, Any], Any]:
    """Returns `lift(tag, payload pointer)`, as stock `_lift`."""
    tagged = ty._tagged()
    by_tag: dict[str, Lift | None] = {}
    for name, case_ty in ty._cases():
        by_tag.setdefault(name, None if case_ty is None else lifter(case_ty))

    def lift(tag: str, ptr: Any) -> Any:
        if tag not in by_tag:
            raise ValueError(f"tag {tag} not found in variant cases")
        lift_payload = by_tag[tag]
        if lift_payload is None:
            return Variant(tag) if tagged else None
        inner = ptr.contents
        payload = lift_payload(inner)
        inner.kind = _BOOL
        inner.of.boolean = False
        _val_delete(ptr)
        return Variant(tag, payload) if tagged else payload

    return lift


def _lower_variant(ty: Any) -> Lower:
    choose = _case_chooser(ty)
    names: dict[str, bytes] = {name: name.encode("utf-8") for name, _ in ty._cases()}

    def lower(store: Any, val: Any, c: Any) -> None:
        name, raw = choose(store, val)
        c.kind = _VARIANT
        variant = c.of.variant
        _set_name(variant.discriminant, names[name])
        variant.val = raw

    return lower


def _lift_variant(ty: Any) -> Lift:
    lift_case = _case_lifter(ty)

    def lift(c: Any) -> Any:
        variant = c.of.variant
        tag = _read_str(variant.discriminant)
        return lift_case(tag, variant.val)

    return lift


def _lower_option(ty: Any) -> Lower:
    choose = _case_chooser(ty)

    def lower(store: Any, val: Any, c: Any) -> None:
        _, raw = choose(store, val)
        c.kind = _OPTION
        c.of.option = raw

    return lower


def _lift_option(ty: Any) -> Lift:
    lift_case = _case_lifter(ty)

    def lift(c: Any) -> Any:
        ptr = c.of.option
        return lift_case("some" if ptr else "none", ptr)

    return lift


def _lower_result(ty: Any) -> Lower:
    choose = _case_chooser(ty)

    def lower(store: Any, val: Any, c: Any) -> None:
        name, raw = choose(store, val)
        c.kind = _RESULT
        result = c.of.result
        result.is_ok = name == "ok"
        result.val = raw

    return lower


def _lift_result(ty: Any) -> Lift:
    lift_case = _case_lifter(ty)

    def lift(c: Any) -> Any:
        result = c.of.result
        return lift_case("ok" if result.is_ok else "err", result.val)

    return lift


# -- entry points ----------------------------------------------------------------------------------


def _stock_lower(ty: Any) -> Lower:
    def lower(store: Any, val: Any, c: Any) -> None:
        ty.convert_to_c(store, val, ctypes.pointer(c))

    return lower


def lowerer(ty: Any) -> Lower:
    """The lowering closure for a value type (built once; keep it with the type it came from)."""
    scalar = _SCALARS.get(type(ty))
    if scalar is not None:
        return _scalar_lower(*scalar)
    if isinstance(ty, _types.String):
        return _lower_string
    if isinstance(ty, _types.ListType):
        if ty._is_bytes():
            return _lower_bytes
        return _lower_list(lowerer(ty.element))
    if isinstance(ty, _types.RecordType):
        return _lower_record(ty)
    if isinstance(ty, _types.TupleType):
        return _lower_tuple(ty)
    if isinstance(ty, _types.VariantType):
        return _lower_variant(ty)
    if isinstance(ty, _types.EnumType):
        return _lower_enum
    if isinstance(ty, _types.OptionType):
        return _lower_option(ty)
    if isinstance(ty, _types.ResultType):
        return _lower_result(ty)
    return _stock_lower(ty)


def lifter(ty: Any) -> Lift:
    """The lifting closure for a value type (built once; keep it with the type it came from)."""
    scalar = _SCALARS.get(type(ty))
    if scalar is not None:
        _, name, pytype, _ = scalar
        return _scalar_lift(name, pytype)
    if isinstance(ty, _types.String):
        return _lift_string
    if isinstance(ty, _types.ListType):
        if ty._is_bytes():
            return lift_bytes
        return _lift_list(lifter(ty.element))
    if isinstance(ty, _types.RecordType):
        return _lift_record(ty)
    if isinstance(ty, _types.TupleType):
        return _lift_tuple(ty)
    if isinstance(ty, _types.VariantType):
        return _lift_variant(ty)
    if isinstance(ty, _types.EnumType):
        return _lift_enum
    if isinstance(ty, _types.OptionType):
        return _lift_option(ty)
    if isinstance(ty, _types.ResultType):
        return _lift_result(ty)
    return ty.convert_from_c  # type: ignore[no-any-return]
