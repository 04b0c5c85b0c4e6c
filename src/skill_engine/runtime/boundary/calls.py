"""Calls across the component boundary without rebuilding the function's type tree per call.

Stock wasmtime-py turns a function's C type into Python `ValType` trees on every call, for every host
import (`_linker.func_impl`) and every export call (`Func.__call__`), and then converts each value by
walking those trees again. Here a `Signature` holds what does not change between calls of one function
type: its parameter and result types (as C handles, to compare against) and the converters built from
them (`convert.py`). A call compares the C type it is given with the cached ones through the C API
(`wasmtime_component_valtype_equal`, a structural check), so a cached signature is only used for the
type it was built for, whichever component, instance or store calls; a different type (another WIT patch
version importing the same name) gets a signature of its own. Caches are small LRU lists: at most
`PER_HOST_FUNCTION` signatures per host function definition (they go with it when its linker is freed)
and `EXPORTS` for export calls.

That comparison is six C calls per host call with a parameter and a result, about a fifth of what a
stream event costs at the boundary (bench/RESULTS.md, "Session 8"). Within one export call, the guest's
host calls all come from one instance, and an instance imports each host function with one type unless
the component imports two versions of one interface (both resolve to the same definition): for a
component without such imports (`one_type_per_import`), `typed_once()` keeps the signature a host
function matched for the rest of the export call.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from ctypes import byref
from typing import Any

from wasmtime import StoreContext, WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime.component import _enter, _linker
from wasmtime.component._types import FuncType

from skill_engine.runtime.boundary import held
from skill_engine.runtime.boundary.convert import Lift, Lower, lifter, lowerer
from skill_engine.runtime.boundary.values import delete_value

PER_HOST_FUNCTION = 4
EXPORTS = 32

_Val = ffi.wasmtime_component_val_t
_ValType = ffi.wasmtime_component_valtype_t
# The ctypes functions themselves, not wasmtime's Python wrappers around them: `matches` runs on every
# call. They keep the GIL (`held.py`).
_param_count = held.function("wasmtime_component_func_type_param_count")
_param_nth = held.function("wasmtime_component_func_type_param_nth")
_result = held.function("wasmtime_component_func_type_result")
_equal = held.function("wasmtime_component_valtype_equal")
_valtype_delete = held.function("wasmtime_component_valtype_delete")


class _Scratch(threading.local):
    """Out-parameters of the C type queries, one set per thread (`matches` calls no Python in between)."""

    def __init__(self) -> None:
        self.name_ptr = ctypes.POINTER(ctypes.c_char)()
        self.name_len = ctypes.c_size_t()
        self.valtype = _ValType()
        self.refs = (byref(self.name_ptr), byref(self.name_len), byref(self.valtype))


_scratch = _Scratch()


def _param_type(fty: Any, i: int) -> Any:
    name_ptr = ctypes.POINTER(ctypes.c_char)()
    name_len = ctypes.c_size_t()
    valtype = _ValType()
    found = _param_nth(fty, i, byref(name_ptr), byref(name_len), byref(valtype))
    assert found
    return valtype


def _result_type(fty: Any) -> Any:
    valtype = _ValType()
    return valtype if _result(fty, byref(valtype)) else None


class Signature:
    """The converters of one component function type, and its C types to recognise it by."""

    def __init__(self, fty: Any) -> None:
        self._params = [_param_type(fty, i) for i in range(_param_count(fty))]
        self._result = _result_type(fty)
        self._param_refs = [byref(valtype) for valtype in self._params]
        self._result_ref = None if self._result is None else byref(self._result)
        typed = FuncType._from_ptr(fty, owner=self)  # borrowed: lives as long as `fty`
        self.lowers: list[Lower] = [lowerer(ty) for _, ty in typed.params]
        self.lifts: list[Lift] = [lifter(ty) for _, ty in typed.params]
        result = typed.result
        self.lower_result: Lower | None = None if result is None else lowerer(result)
        self.lift_result: Lift | None = None if result is None else lifter(result)
        self.nparams = len(self._params)

    def matches(self, fty: Any, nargs: int | None = None, nresults: int | None = None) -> bool:
        """Whether `fty` is the type this signature was built for (structurally, via the C API).

        A host call knows its numbers of parameters and results (`nargs`, `nresults`): two C calls fewer.
        """
        if (_param_count(fty) if nargs is None else nargs) != self.nparams:
            return False
        name_ptr, name_len, theirs = _scratch.refs
        for i, mine in enumerate(self._param_refs):
            _param_nth(fty, i, name_ptr, name_len, theirs)
            same = _equal(mine, theirs)
            _valtype_delete(theirs)
            if not same:
                return False
        if nresults == 0:
            return self._result_ref is None
        has_result = _result(fty, theirs)
        if not has_result or self._result_ref is None:
            if has_result:
                _valtype_delete(theirs)
            return not has_result and self._result_ref is None
        same = _equal(self._result_ref, theirs)
        _valtype_delete(theirs)
        return bool(same)

    def __del__(self, _delete: Any = _valtype_delete, _byref: Any = byref) -> None:
        # Bound as defaults: at interpreter exit the module's globals may already be gone.
        for valtype in [*self._params, self._result]:
            if valtype is not None:
                _delete(_byref(valtype))


class SignatureCache:
    """A few signatures, most recently added first; thread-safe, bounded."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: list[Signature] = []
        self._lock = threading.Lock()

    def get(self, fty: Any, nargs: int | None = None, nresults: int | None = None) -> Signature:
        for signature in self._entries:  # a snapshot: replaced, never mutated in place
            if signature.matches(fty, nargs, nresults):
                return signature
        signature = Signature(fty)
        with self._lock:
            self._entries = [signature, *self._entries][: self.limit]
        return signature

    def __len__(self) -> int:
        return len(self._entries)


# -- host functions (imports) -----------------------------------------------------------------------


class _CallScope(threading.local):
    """The signatures host functions matched during the current export call on this thread, by host
    function index; None outside `typed_once()`."""

    matched: dict[int, Signature] | None = None


_scope = _CallScope()


def one_type_per_import(import_names: Iterable[str]) -> bool:
    """Whether no two of a component's imports are versions of one interface (`a:b/c@0.3.0` and
    `a:b/c@0.3.1`, or one of them without a version): then each host function is reached through one
    import, with one type, in any of its instances."""
    unversioned = [name.partition("@")[0] for name in import_names]
    return len(set(unversioned)) == len(unversioned)


@contextmanager
def typed_once() -> Iterator[None]:
    """Host calls made on this thread inside the block reuse the signature their host function matched
    first; only for an export call of a component with `one_type_per_import`."""
    outer, _scope.matched = _scope.matched, {}
    try:
        yield
    finally:
        _scope.matched = outer


def _signature(idx: int, host: HostFunction, ty_raw: Any, nargs: int, nresults: int) -> Signature:
    matched = _scope.matched
    if matched is None:
        return host.signatures.get(ty_raw, nargs, nresults)
    signature = matched.get(idx)
    if signature is None:
        signature = matched[idx] = host.signatures.get(ty_raw, nargs, nresults)
    return signature


class HostFunction:
    """What `add_func` stores for a host function: the Python function and its signatures."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.signatures = SignatureCache(PER_HOST_FUNCTION)

    def __call__(self, *args: Any) -> Any:
        return self.func(*args)


@ffi.wasmtime_component_func_callback_t
def func_impl(idx, context, ty_raw, args, nargs, results, nresults):  # type: ignore
    def run(store: StoreContext) -> None:
        index = idx or 0
        host: HostFunction = _linker.FUNCTIONS.get(index)
        signature = _signature(index, host, ty_raw, nargs, nresults)
        assert signature.nparams == nargs
        lower_result = signature.lower_result
        assert nresults == (0 if lower_result is None else 1)
        lifts = signature.lifts
        # Resource methods take one or two parameters: no list and no comprehension frame for them.
        if nargs == 1:
            result = host.func(store, lifts[0](args[0]))
        elif nargs == 2:
            result = host.func(store, lifts[0](args[0]), lifts[1](args[1]))
        else:
            result = host.func(store, *[lift(args[i]) for i, lift in enumerate(lifts)])
        if lower_result is None:
            assert result is None
        else:
            lower_result(store, result, results[0])

    return _linker.catch_exceptions(context, run)


def add_func(self: Any, name: str, func: Any) -> None:
    """`LinkerInstance.add_func`, storing a `HostFunction` for our `func_impl`."""
    self._assert_not_locked()
    name_bytes = name.encode("utf-8")
    name_buf = ctypes.create_string_buffer(name_bytes)
    idx = _linker.FUNCTIONS.allocate(HostFunction(func))
    err = ffi.wasmtime_component_linker_instance_add_func(
        self.ptr(), name_buf, len(name_bytes), func_impl, idx, _linker.func_finalize
    )
    if err:
        raise WasmtimeError._from_ptr(err)


# -- export calls ------------------------------------------------------------------------------------

exports = SignatureCache(EXPORTS)


def func_call(self: Any, store: Any, *params: Any) -> Any:
    """`component.Func.__call__` with the function's signature from `exports`."""
    fty = ffi.wasmtime_component_func_type(byref(self._func), store._context())
    try:
        signature = exports.get(fty)
    finally:
        ffi.wasmtime_component_func_type_delete(fty)
    if len(params) != signature.nparams:
        raise TypeError(
            f"wrong number of parameters provided: given {len(params)}, expected {signature.nparams}"
        )
    param_capi = (_Val * len(params))()
    n = 0
    try:
        for lower, val in zip(signature.lowers, params, strict=True):
            lower(store, val, param_capi[n])
            n += 1
        lift_result = signature.lift_result
        result_space = None if lift_result is None else _Val()
        result_capi = None if result_space is None else byref(result_space)
        error = ffi.wasmtime_component_func_call(
            byref(self._func), store._context(), param_capi, n, result_capi, 0 if result_space is None else 1
        )
        if error:
            failure = WasmtimeError._from_ptr(error)
            _enter.maybe_raise_last_exn()
            raise failure
        if lift_result is None:
            return None
        return lift_result(result_space)
    finally:
        for i in range(n):
            delete_value(param_capi[i])
