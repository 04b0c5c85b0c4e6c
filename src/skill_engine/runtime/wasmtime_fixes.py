"""Workarounds for wasmtime-py 50.0.1, kept in one place so they can be dropped when upstream fixes land.

Each fix is applied once by `apply()`; `unapplied()` restores the stock code.
`tests/unit/test_wasmtime_fixes.py` reproduces each bug on the stock code and shows the fix resolves it
(`test_interleaved_*`, `test_list_of_u8_is_not_converted_byte_by_byte`,
`test_a_variant_types_cases_are_read_from_the_c_api_once`, `test_data_only_c_calls_keep_the_gil`;
fixes 5 and 6: `tests/unit/test_wasm_boundary.py::test_function_types_are_not_rebuilt_on_every_call`),
so a test fails when `apply()` stops installing one.

1. Exception routing: a Python exception raised by a host import is parked in the process-global
   `component._enter.LAST_EXCEPTION` and re-raised by whichever thread looks next. Under concurrency a call
   can receive another invocation's exception or lose its own. We park it per thread instead: host imports
   run on the thread that called into wasm, so the same thread picks it up.
2. Variant lowering: `_types.case_test_cache` is a global set that is cleared and refilled while lowering
   every untagged option/result/variant. Two threads lowering at once choose wrong cases. We make the set
   thread-local.
3. `list<u8>` conversion: stock code converts one byte at a time through a 32-byte value struct each
   (1.35 s per MiB). We fill and read the value array in place with strided slices instead (~30x faster),
   64 KiB at a time so the event loop keeps the GIL between steps (`boundary/values.py`).
4. Variant cases: stock code asks the C API for a variant type's cases (name and payload type each) every
   time it needs them, several times per value lowered or lifted; a stream event crossing the boundary
   paid this ~10% of its host CPU. We remember them on the type object, which stands for one C type.
5. Host imports: stock `func_impl` rebuilds the Python type tree of the function on every call and walks
   it again for every value. Our `add_func` stores a `boundary.calls.HostFunction`, whose signatures (the
   function's converters, built once, `boundary/convert.py`) are found per call by comparing C types
   (`wasmtime_component_valtype_equal`), so a cached signature only serves the type it was built for.
6. Export calls: `Func.__call__` does the same per call of the skill's `run`/`metadata`; ours uses a small
   process-wide cache of signatures, matched the same way.
7. The GIL: the bindings call every C function through a `CDLL`, which releases the GIL for each call,
   even one that only builds a value or compares two types. With other threads waiting for the GIL each
   release is a thread switch. Functions that only touch data are called through a `PyDLL` instead
   (`boundary/held.py` lists which); calls that run guest code still release it.

Also here: a binding of `wasmtime_store_epoch_deadline_callback`, which the C library exports but the
Python package does not wrap. It lets the engine decide at every epoch tick whether a guest continues,
which is how timeouts and cancellation stop a busy guest without touching the store from another thread.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import wasmtime
from wasmtime import _bindings
from wasmtime import _ffi as ffi
from wasmtime.component import _enter, _func, _linker, _types

from skill_engine.runtime.boundary import calls as wasm_calls
from skill_engine.runtime.boundary import held as wasm_held
from skill_engine.runtime.boundary import values as wasm_values

# ---------------------------------------------------------------------------------------------------
# 1. Exception routing


class _ThreadSlot(threading.local):
    exception: BaseException | None = None


_slot = _ThreadSlot()


def _catch_exceptions(store_raw: Any, func: Callable[[wasmtime.StoreContext], None]) -> Any:
    store = wasmtime.StoreContext(store_raw)
    error: wasmtime.WasmtimeError | None = None
    try:
        func(store)
    except wasmtime.WasmtimeError as e:
        error = e
    except Exception as e:
        _slot.exception = e
        error = wasmtime.WasmtimeError(f"host function failed: {type(e).__name__}: {e}")
    finally:
        store._invalidate()
    if error is not None:
        return ctypes.cast(error._consume(), ctypes.c_void_p).value
    return 0


def _maybe_raise_last_exn() -> None:
    exception = _slot.exception
    if exception is None:
        return
    _slot.exception = None
    raise exception


# ---------------------------------------------------------------------------------------------------
# 2. Variant lowering


class _ThreadLocalSet(threading.local):
    """Duck-types the few set operations `_types` performs on `case_test_cache`."""

    def __init__(self) -> None:
        self.items: set[type] = set()

    def clear(self) -> None:
        self.items.clear()

    def add(self, item: type) -> None:
        self.items.add(item)

    def __iter__(self) -> Iterator[type]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: object) -> bool:
        return item in self.items


# ---------------------------------------------------------------------------------------------------
# 3. list<u8>

_stock_list_to_c = _types.ListType.convert_to_c
_stock_list_from_c = _types.ListType.convert_from_c


def _list_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if not (isinstance(val, bytes | bytearray) and self._is_bytes()):
        return _stock_list_to_c(self, store, val, ptr)  # type: ignore[no-any-return]
    wasm_values.lower_bytes(val, ptr.contents)
    return None


def _list_from_c(self: Any, c: Any) -> Any:
    if not self._is_bytes():
        return _stock_list_from_c(self, c)
    return wasm_values.lift_bytes(c)


# ---------------------------------------------------------------------------------------------------
# Epoch deadline callback

UPDATE_DEADLINE_CONTINUE = 0

EpochCallback = ctypes.CFUNCTYPE(
    ctypes.c_void_p,  # wasmtime_error_t*, NULL to continue
    ctypes.c_void_p,  # wasmtime_context_t*
    ctypes.c_void_p,  # void* env
    ctypes.POINTER(ctypes.c_uint64),  # epoch_deadline_delta (out)
    ctypes.POINTER(ctypes.c_uint8),  # wasmtime_update_deadline_kind_t (out)
)

_set_epoch_callback = ffi.dll.wasmtime_store_epoch_deadline_callback
_set_epoch_callback.restype = None
_set_epoch_callback.argtypes = [ctypes.c_void_p, EpochCallback, ctypes.c_void_p, ctypes.c_void_p]


def set_epoch_deadline_callback(store: wasmtime.Store, decide: Callable[[], str | None], ticks: int) -> Any:
    """Calls `decide` whenever the store's epoch deadline is reached.

    `decide` returns None to let the guest run for another `ticks` ticks, or a message to trap with.
    Returns the ctypes callback object, which the caller must keep alive as long as the store lives.
    """

    def callback(_context: Any, _env: Any, delta: Any, kind: Any) -> int | None:
        try:
            message = decide()
        except Exception as e:  # never let an exception unwind through C
            message = f"epoch callback failed: {e}"
        if message is None:
            delta[0] = ticks
            kind[0] = UPDATE_DEADLINE_CONTINUE
            return None
        error = ffi.wasmtime_error_new(ctypes.create_string_buffer(message.encode()))
        return ctypes.cast(error, ctypes.c_void_p).value

    c_callback = EpochCallback(callback)
    _set_epoch_callback(ctypes.cast(store.ptr(), ctypes.c_void_p), c_callback, None, None)
    return c_callback


_stock_variant_cases = _types.VariantType._cases


def _variant_cases(self: Any) -> Any:
    cases = self.__dict__.get("_engine_cases")
    if cases is None:
        cases = self.__dict__["_engine_cases"] = _stock_variant_cases(self)
    return cases


# ---------------------------------------------------------------------------------------------------

_stock = {
    "catch_exceptions": _enter.catch_exceptions,
    "linker_catch_exceptions": _linker.catch_exceptions,
    "maybe_raise_last_exn": _enter.maybe_raise_last_exn,
    "case_test_cache": _types.case_test_cache,
    "add_func": _linker.LinkerInstance.add_func,
    "func_call": _func.Func.__call__,
}
_held_bindings = wasm_held.twins()
_stock_bindings = {name: getattr(_bindings, name) for name in _held_bindings}
_applied = False


def apply() -> None:
    """Applies all fixes; idempotent."""
    global _applied
    if _applied:
        return
    _enter.catch_exceptions = _catch_exceptions
    _linker.catch_exceptions = _catch_exceptions
    _enter.maybe_raise_last_exn = _maybe_raise_last_exn
    _types.case_test_cache = _ThreadLocalSet()
    _types.ListType.convert_to_c = _list_to_c
    _types.ListType.convert_from_c = _list_from_c
    _types.VariantType._cases = _variant_cases
    _linker.LinkerInstance.add_func = wasm_calls.add_func
    _func.Func.__call__ = wasm_calls.func_call
    for name, function in _held_bindings.items():
        setattr(_bindings, name, function)
    _applied = True


def _restore() -> None:
    global _applied
    _enter.catch_exceptions = _stock["catch_exceptions"]
    _linker.catch_exceptions = _stock["linker_catch_exceptions"]
    _enter.maybe_raise_last_exn = _stock["maybe_raise_last_exn"]
    _types.case_test_cache = _stock["case_test_cache"]
    _types.ListType.convert_to_c = _stock_list_to_c
    _types.ListType.convert_from_c = _stock_list_from_c
    _types.VariantType._cases = _stock_variant_cases
    _linker.LinkerInstance.add_func = _stock["add_func"]
    _func.Func.__call__ = _stock["func_call"]
    for name, function in _stock_bindings.items():
        setattr(_bindings, name, function)
    _applied = False


@contextmanager
def unapplied() -> Iterator[None]:
    """Temporarily restores stock wasmtime-py behaviour (for regression tests)."""
    was_applied = _applied
    _restore()
    try:
        yield
    finally:
        if was_applied:
            apply()


@contextmanager
def stock_calls() -> Iterator[None]:
    """Temporarily restores only stock calls across the boundary (fixes 5 and 6), keeping the other fixes:
    the baseline of `bench/boundary.py`. Host functions keep the `func_impl` of the linker they were
    defined on, so build linkers inside."""
    was_applied = _applied
    _linker.LinkerInstance.add_func = _stock["add_func"]
    _func.Func.__call__ = _stock["func_call"]
    try:
        yield
    finally:
        if was_applied:
            _linker.LinkerInstance.add_func = wasm_calls.add_func
            _func.Func.__call__ = wasm_calls.func_call
