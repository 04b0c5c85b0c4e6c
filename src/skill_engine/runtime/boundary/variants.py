"""Converters of variants, options and results: their cases are looked up once, not per value.

Each builder gets the recursive `lowerer`/`lifter` of `convert.py` for the payload types.
"""

from __future__ import annotations

from collections.abc import Callable
from ctypes import byref
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component._types import Variant

from skill_engine.runtime.boundary.values import (
    BOOL,
    Lift,
    Lower,
    Val,
    read_str,
    set_name,
    val_delete,
    val_new,
)

Builder = Callable[[Any], Any]
_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value


def _boxed(store: Any, lower: Lower, payload: Any) -> Any:
    """The payload lowered into a heap-allocated value (what a case of a variant, option or result holds)."""
    raw = Val()
    lower(store, payload, raw)
    return val_new(byref(raw))


def _case_chooser(ty: Any, lowerer: Builder) -> Callable[[Any, Any], tuple[str, Any]]:
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
            return tag, _boxed(store, lower, val.payload)

        return choose

    def choose_untagged(store: Any, val: Any) -> tuple[str, Any]:
        for name, classes, lower in cases:
            if classes is None:
                if val is None:
                    return name, None
            elif isinstance(val, classes):
                assert lower is not None
                return name, _boxed(store, lower, val)
        raise ValueError("value not valid for this variant")

    return choose_untagged


def _case_lifter(ty: Any, lifter: Builder) -> Callable[[str, Any], Any]:
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
        inner.kind = BOOL
        inner.of.boolean = False
        val_delete(ptr)
        return Variant(tag, payload) if tagged else payload

    return lift


def lower_variant(ty: Any, lowerer: Builder) -> Lower:
    choose = _case_chooser(ty, lowerer)
    names: dict[str, bytes] = {name: name.encode("utf-8") for name, _ in ty._cases()}

    def lower(store: Any, val: Any, c: Any) -> None:
        name, raw = choose(store, val)
        c.kind = _VARIANT
        variant = c.of.variant
        set_name(variant.discriminant, names[name])
        variant.val = raw

    return lower


def lift_variant(ty: Any, lifter: Builder) -> Lift:
    lift_case = _case_lifter(ty, lifter)

    def lift(c: Any) -> Any:
        variant = c.of.variant
        tag = read_str(variant.discriminant)
        return lift_case(tag, variant.val)

    return lift


def lower_option(ty: Any, lowerer: Builder) -> Lower:
    """`none` for None, else `some` if the value is of the payload's classes (stock's case order)."""
    payload_ty = ty.payload
    classes: set[type] = set()
    payload_ty.add_classes(classes)
    some = tuple(classes)
    lower_some = lowerer(payload_ty)

    def lower(store: Any, val: Any, c: Any) -> None:
        if val is None:
            raw = None
        elif isinstance(val, some):
            raw = _boxed(store, lower_some, val)
        else:
            raise ValueError("value not valid for this variant")
        c.kind = _OPTION
        c.of.option = raw

    return lower


def lift_option(ty: Any, lifter: Builder) -> Lift:
    lift_case = _case_lifter(ty, lifter)

    def lift(c: Any) -> Any:
        ptr = c.of.option
        return lift_case("some" if ptr else "none", ptr)

    return lift


def lower_result(ty: Any, lowerer: Builder) -> Lower:
    choose = _case_chooser(ty, lowerer)

    def lower(store: Any, val: Any, c: Any) -> None:
        name, raw = choose(store, val)
        c.kind = _RESULT
        result = c.of.result
        result.is_ok = name == "ok"
        result.val = raw

    return lower


def lift_result(ty: Any, lifter: Builder) -> Lift:
    lift_case = _case_lifter(ty, lifter)

    def lift(c: Any) -> Any:
        result = c.of.result
        return lift_case("ok" if result.is_ok else "err", result.val)

    return lift
