"""Converters between Python values and wasmtime's C component values, built once per value type.

wasmtime-py's `ValType.convert_to_c`/`convert_from_c` walk the type through the C API for every value:
a record asks for its fields, a variant for its cases, an untagged option or result collects the Python
classes of each case, all again for every element of a list. `lowerer(ty)` and `lifter(ty)` do that walk
once and return plain closures; the values they produce and accept are exactly stock wasmtime-py's
(`Record`, `Variant`, `None` for `none`, `bytes` for `list<u8>`, ...), with the same type errors;
a `borrow<T>` lifts to a `borrows.Borrowed`, which answers `to_host(store)` like a `ResourceAny`.
A lowerer writes into a `wasmtime_component_val_t` (not a pointer to one), a lifter reads one and frees
what it owned, as the stock methods do. Types without a fast path (flags, owned resources, futures, ...)
keep the stock methods.
"""

from __future__ import annotations

import ctypes
from ctypes import byref
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import _types
from wasmtime.component._types import Record

from skill_engine.runtime.boundary import borrows, variants
from skill_engine.runtime.boundary.values import (
    BOOL,
    SCALARS,
    Lift,
    Lower,
    delete_list,
    lift_bytes,
    lift_enum,
    lift_string,
    lower_bytes_value,
    lower_enum,
    lower_string,
    new_list,
    record_delete,
    record_new,
    scalar_lift,
    scalar_lower,
    set_name,
    tuple_delete,
    tuple_new,
)

__all__ = ["Lift", "Lower", "lifter", "lowerer"]

_LIST = ffi.WASMTIME_COMPONENT_LIST.value
_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
_TUPLE = ffi.WASMTIME_COMPONENT_TUPLE.value


def _lower_record(ty: Any) -> Lower:
    fields = [(name, name.encode("utf-8"), lowerer(field)) for name, field in ty.fields]
    n = len(fields)

    def lower(store: Any, val: Any, c: Any) -> None:
        raw = ffi.wasmtime_component_valrecord_t()
        record_new(raw, n)
        data = raw.data
        i = 0
        try:
            for name, encoded, lower_field in fields:
                entry = data[i]
                set_name(entry.name, encoded)
                lower_field(store, getattr(val, name), entry.val)
                i += 1
        except BaseException:
            for j in range(i, n):
                entry = data[j]
                entry.val.kind = BOOL
                entry.val.of.boolean = False
                if j > i:
                    ffi.wasm_byte_vec_new_empty(byref(entry.name))
            record_delete(byref(raw))
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
                inner.kind = BOOL
                inner.of.boolean = False
            return ret
        finally:
            record_delete(byref(record))

    return lift


def _lower_list(element: Lower) -> Lower:
    def lower(store: Any, val: Any, c: Any) -> None:
        if not isinstance(val, list):
            raise TypeError("expected list value")
        n = len(val)
        raw = ffi.wasmtime_component_vallist_t()
        new_list(raw, n)
        data = raw.data
        i = 0
        try:
            for e in val:
                element(store, e, data[i])
                i += 1
        except BaseException:
            for j in range(i, n):
                data[j].kind = BOOL
                data[j].of.boolean = False
            delete_list(raw)
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
                inner.kind = BOOL
                inner.of.boolean = False
            return out
        finally:
            delete_list(raw)

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
        tuple_new(raw, n)
        data = raw.data
        i = 0
        try:
            for lower_element, e in zip(elements, val, strict=True):
                lower_element(store, e, data[i])
                i += 1
        except BaseException:
            for j in range(i, n):
                data[j].kind = BOOL
                data[j].of.boolean = False
            tuple_delete(byref(raw))
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
                inner.kind = BOOL
                inner.of.boolean = False
            return tuple(out)
        finally:
            tuple_delete(byref(raw))

    return lift


# -- entry points ----------------------------------------------------------------------------------


def _stock_lower(ty: Any) -> Lower:
    def lower(store: Any, val: Any, c: Any) -> None:
        ty.convert_to_c(store, val, ctypes.pointer(c))

    return lower


def lowerer(ty: Any) -> Lower:
    """The lowering closure for a value type (built once; keep it with the type it came from)."""
    scalar = SCALARS.get(type(ty))
    if scalar is not None:
        return scalar_lower(*scalar)
    if isinstance(ty, _types.String):
        return lower_string
    if isinstance(ty, _types.ListType):
        if ty._is_bytes():
            return lower_bytes_value
        return _lower_list(lowerer(ty.element))
    if isinstance(ty, _types.RecordType):
        return _lower_record(ty)
    if isinstance(ty, _types.TupleType):
        return _lower_tuple(ty)
    if isinstance(ty, _types.VariantType):
        return variants.lower_variant(ty, lowerer)
    if isinstance(ty, _types.EnumType):
        return lower_enum
    if isinstance(ty, _types.OptionType):
        return variants.lower_option(ty, lowerer)
    if isinstance(ty, _types.ResultType):
        return variants.lower_result(ty, lowerer)
    return _stock_lower(ty)


def lifter(ty: Any) -> Lift:
    """The lifting closure for a value type (built once; keep it with the type it came from)."""
    scalar = SCALARS.get(type(ty))
    if scalar is not None:
        _, name, pytype, _ = scalar
        return scalar_lift(name, pytype)
    if isinstance(ty, _types.String):
        return lift_string
    if isinstance(ty, _types.ListType):
        if ty._is_bytes():
            return lift_bytes
        return _lift_list(lifter(ty.element))
    if isinstance(ty, _types.RecordType):
        return _lift_record(ty)
    if isinstance(ty, _types.TupleType):
        return _lift_tuple(ty)
    if isinstance(ty, _types.VariantType):
        return variants.lift_variant(ty, lifter)
    if isinstance(ty, _types.EnumType):
        return lift_enum
    if isinstance(ty, _types.OptionType):
        return variants.lift_option(ty, lifter)
    if isinstance(ty, _types.ResultType):
        return variants.lift_result(ty, lifter)
    if isinstance(ty, _types.BorrowType):
        return borrows.lift_borrow
    return ty.convert_from_c  # type: ignore[no-any-return]
