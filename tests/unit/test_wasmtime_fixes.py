"""Regression tests for the wasmtime-py 50.0.1 workarounds in `skill_engine.runtime.wasmtime_fixes`.

Each fix has a test that reproduces its bug deterministically on stock wasmtime-py (under
`wasmtime_fixes.unapplied()`) and shows the fix resolves it, so it fails when the fix is taken out of
`apply()`; the stress tests under a tiny thread switch interval check the same fixes under real load.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component import Component, Linker, Variant

from skill_engine.runtime import wasmtime_fixes
from skill_engine.runtime.compiler import ArtifactCache, Compiler
from skill_engine.runtime.engine import make_config
from tests.support.linkers import stub_linker


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    wasmtime_fixes.apply()
    return wasmtime.Engine(make_config())


@pytest.fixture(scope="module")
def component(engine: wasmtime.Engine, probe_wasm: Path, compiled_cache: Path) -> Component:
    compiler = Compiler(ArtifactCache(compiled_cache, 10 * 1024**3))
    artifact = asyncio.run(compiler.compiled(probe_wasm.read_bytes(), "probe"))
    return Component.deserialize_file(engine, str(artifact))


@pytest.fixture
def fast_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


class Marker(Exception):
    pass


def raising_linker(engine: wasmtime.Engine, component: Component) -> Linker:
    """Every pharia import raises a `Marker` naming the thread that called it."""

    def raiser(_store: Any, *_args: Any) -> Any:
        raise Marker(threading.get_ident())

    return stub_linker(engine, component, lambda _name: raiser)


def in_threads(count: int, work: Callable[[], None]) -> None:
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.usefixtures("fast_switching")
def test_each_thread_gets_its_own_host_exception(engine: wasmtime.Engine, component: Component) -> None:
    linker = raising_linker(engine, component)
    interface = component.get_export_index("pharia:skill/skill-handler@0.3.11")
    run = component.get_export_index("run", interface)
    outcomes: list[bool] = []

    def work() -> None:
        for _ in range(15):
            store = wasmtime.Store(engine)
            store.set_wasi(wasmtime.WasiConfig())
            store.set_epoch_deadline(1 << 40)
            instance = linker.instantiate(store, component)
            try:
                instance.get_func(store, run)(store, b'{"mode":"chat","text":"x"}')
                outcomes.append(False)
            except Marker as e:
                outcomes.append(e.args[0] == threading.get_ident())
            except Exception:
                outcomes.append(False)
            finally:
                store.close()

    in_threads(6, work)
    assert len(outcomes) == 90
    assert all(outcomes), f"{outcomes.count(False)} of 90 calls got a foreign or lost exception"


@pytest.mark.usefixtures("fast_switching")
def test_untagged_variants_lower_to_the_right_case(engine: wasmtime.Engine, component: Component) -> None:
    # `result<list<u8>, error>` is untagged: its cases are told apart by Python type while lowering.
    handler = component.type.exports(engine)["pharia:skill/skill-handler@0.3.11"]
    result_type = handler.ty.exports(engine)["run"].ty.result
    store = wasmtime.Store(engine)
    values: list[Any] = [b"ok-bytes", Variant("internal", "boom"), Variant("invalid-input", "bad")]
    failures: list[str] = []

    def work() -> None:
        for i in range(400):
            value = values[i % 3]
            raw = ffi.wasmtime_component_val_t()
            try:
                result_type.convert_to_c(store, value, ctypes.pointer(raw))
                back = result_type.convert_from_c(raw)
            except Exception as e:
                failures.append(f"{type(e).__name__}: {e}")
                continue
            if back != value:
                failures.append(f"{value!r} came back as {back!r}")

    in_threads(4, work)
    assert failures == []


@pytest.mark.parametrize("size", [0, 1, 255, 1024 * 1024 + 17])
def test_list_of_u8_round_trips_every_byte(engine: wasmtime.Engine, component: Component, size: int) -> None:
    handler = component.type.exports(engine)["pharia:skill/skill-handler@0.3.11"]
    list_type = handler.ty.exports(engine)["run"].ty.params[0][1]
    data = bytes(i % 256 for i in range(size))
    raw = ffi.wasmtime_component_val_t()
    list_type.convert_to_c(wasmtime.Store(engine), data, ctypes.pointer(raw))
    assert list_type.convert_from_c(raw) == data


def test_list_of_u8_end_to_end_through_a_guest(engine: wasmtime.Engine, component: Component) -> None:
    """1 MiB in and out of a real guest: the fast path must hand wasm exactly these bytes."""
    linker = raising_linker(engine, component)
    interface = component.get_export_index("pharia:skill/skill-handler@0.3.11")
    run = component.get_export_index("run", interface)
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_epoch_deadline(1 << 40)
    payload = "".join(chr(0x20 + i % 90) for i in range(1024 * 1024)).replace('"', "'").replace("\\", "/")
    output = linker.instantiate(store, component).get_func(store, run)(
        store, ('{"mode":"echo","payload":"' + payload + '"}').encode()
    )
    store.close()
    assert output == ('{"result":"' + payload + '"}').encode()


# -- each bug reproduced: the same scenario fails on stock wasmtime-py (`unapplied()`) ------------------
# Deterministic: instead of hoping for a bad thread switch, the scenario parks one thread at the exact point
# where stock code lets another thread's work overwrite shared state, runs the other thread, then resumes.


def parked_while(
    monkeypatch: pytest.MonkeyPatch,
    owner: type,
    method: str,
    should_park: Callable[..., bool],
    first: Callable[[], None],
    second: Callable[[], None],
) -> None:
    """Runs `first` on a thread until it calls `owner.method` in a way `should_park` accepts (once), runs
    `second` on another thread to completion, then lets `first` go on."""
    stock = getattr(owner, method)
    parked, resumed = threading.Event(), threading.Event()
    parking_thread: list[int] = []

    def hooked(*args: Any) -> Any:
        result = stock(*args)
        if threading.get_ident() in parking_thread and not parked.is_set() and should_park(*args):
            parked.set()
            resumed.wait(60)
        return result

    monkeypatch.setattr(owner, method, hooked)

    def run_first() -> None:
        parking_thread.append(threading.get_ident())
        first()

    one = threading.Thread(target=run_first)
    one.start()
    assert parked.wait(60), "the first thread never reached the parking point"
    other = threading.Thread(target=second)
    other.start()
    other.join(60)
    resumed.set()
    one.join(60)
    assert not one.is_alive() and not other.is_alive()


def exceptions_of_two_interleaved_calls(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> dict[str, str]:
    """Thread `a`'s host import raises; `a` is parked right after, while `b`'s host import raises too."""
    linker = raising_linker(engine, component)
    interface = component.get_export_index("pharia:skill/skill-handler@0.3.11")
    run = component.get_export_index("run", interface)
    seen: dict[str, str] = {}

    def call(name: str) -> None:
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 40)
        try:
            linker.instantiate(store, component).get_func(store, run)(store, b'{"mode":"chat","text":"x"}')
            seen[name] = "no exception"
        except Marker as e:
            seen[name] = "own" if e.args[0] == threading.get_ident() else "foreign"
        except Exception as e:
            seen[name] = f"lost: {type(e).__name__}"
        finally:
            store.close()

    # Both the stock and the fixed `catch_exceptions` invalidate the host call's store context last.
    parked_while(
        monkeypatch,
        wasmtime.StoreContext,
        "_invalidate",
        lambda _self: True,
        lambda: call("a"),
        lambda: call("b"),
    )
    return seen


def test_interleaved_host_exceptions_stay_with_their_calls(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> None:
    """Fix 1: stock wasmtime-py parks a host import's exception in one process-global slot; a call in
    another thread raising meanwhile takes it over, and the first call loses its own exception."""
    with wasmtime_fixes.unapplied():
        assert exceptions_of_two_interleaved_calls(monkeypatch, engine, component) == {
            "b": "own",
            "a": "lost: WasmtimeError",
        }
    monkeypatch.undo()
    assert exceptions_of_two_interleaved_calls(monkeypatch, engine, component) == {"b": "own", "a": "own"}


def lowering_of_two_interleaved_results(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> dict[str, str]:
    """Thread `a` lowers `ok(bytes)` of the untagged `result<list<u8>, error>` and is parked right after
    collecting the classes of the `ok` case, while thread `b` lowers an `err(...)` of the same type."""
    from wasmtime.component import _types

    handler = component.type.exports(engine)["pharia:skill/skill-handler@0.3.11"]
    result_type = handler.ty.exports(engine)["run"].ty.result
    store = wasmtime.Store(engine)
    seen: dict[str, str] = {}

    def lower(name: str, value: Any) -> None:
        raw = ffi.wasmtime_component_val_t()
        try:
            result_type.convert_to_c(store, value, ctypes.pointer(raw))
            back = result_type.convert_from_c(raw)
            seen[name] = "right case" if back == value else f"came back as {back!r}"
        except Exception as e:
            seen[name] = f"{type(e).__name__}: {e}"

    parked_while(
        monkeypatch,
        _types.ListType,
        "add_classes",
        lambda _self, classes: classes is _types.case_test_cache,  # not `_tagged()`'s own sets
        lambda: lower("a", b"ok-bytes"),
        lambda: lower("b", Variant("internal", "boom")),
    )
    return seen


def test_interleaved_untagged_variants_lower_to_their_own_case(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> None:
    """Fix 2: stock wasmtime-py tells the cases of an untagged variant apart with one process-global set
    of classes; a lowering in another thread refills it between filling and testing it."""
    with wasmtime_fixes.unapplied():
        assert lowering_of_two_interleaved_results(monkeypatch, engine, component) == {
            "b": "right case",
            "a": "ValueError: value not valid for this variant",
        }
    monkeypatch.undo()
    assert lowering_of_two_interleaved_results(monkeypatch, engine, component) == {
        "a": "right case",
        "b": "right case",
    }


def per_byte_conversions(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> int:
    """How many single-`u8` conversions a 64 KiB `list<u8>` takes there and back."""
    from wasmtime.component import _types

    counted = [0]
    for method in ("convert_to_c", "convert_from_c"):
        stock = getattr(_types.U8, method)

        def counting(*args: Any, _stock: Any = stock) -> Any:
            counted[0] += 1
            return _stock(*args)

        monkeypatch.setattr(_types.U8, method, counting)
    handler = component.type.exports(engine)["pharia:skill/skill-handler@0.3.11"]
    list_type = handler.ty.exports(engine)["run"].ty.params[0][1]
    data = bytes(i % 256 for i in range(64 * 1024))
    raw = ffi.wasmtime_component_val_t()
    list_type.convert_to_c(wasmtime.Store(engine), data, ctypes.pointer(raw))
    assert list_type.convert_from_c(raw) == data
    monkeypatch.undo()
    return counted[0]


def test_list_of_u8_is_not_converted_byte_by_byte(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> None:
    """Fix 3: stock wasmtime-py converts every byte of a `list<u8>` on its own (1.35 s per MiB); counted
    rather than timed, so a slow machine cannot make it fail."""
    with wasmtime_fixes.unapplied():
        assert per_byte_conversions(monkeypatch, engine, component) == 2 * 64 * 1024
    assert per_byte_conversions(monkeypatch, engine, component) == 0


def variant_case_enumerations(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> int:
    """How often the C API is asked for the cases of one variant type object while three values of it are
    lowered and lifted."""
    counted = [0]
    stock = ffi.wasmtime_component_variant_type_case_count

    def counting(*args: Any) -> Any:
        counted[0] += 1
        return stock(*args)

    monkeypatch.setattr(ffi, "wasmtime_component_variant_type_case_count", counting)
    handler = component.type.exports(engine)["pharia:skill/skill-handler@0.3.11"]
    error_type = handler.ty.exports(engine)["run"].ty.result.err  # variant error { internal, invalid-input }
    store = wasmtime.Store(engine)
    for value in (Variant("internal", "boom"), Variant("invalid-input", "bad"), Variant("internal", "again")):
        raw = ffi.wasmtime_component_val_t()
        error_type.convert_to_c(store, value, ctypes.pointer(raw))
        assert error_type.convert_from_c(raw) == value
    monkeypatch.undo()
    return counted[0]


def test_a_variant_types_cases_are_read_from_the_c_api_once(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> None:
    """Fix 4: stock wasmtime-py asks the C API for a variant type's cases several times per value (about
    10% of a stream event's host CPU); counted rather than timed."""
    with wasmtime_fixes.unapplied():
        assert variant_case_enumerations(monkeypatch, engine, component) > 3
    assert variant_case_enumerations(monkeypatch, engine, component) == 1


PER_STREAM_EVENT = [
    # What one chat event costs in C calls between `chat-stream.next` and `stream-output.write` (counted
    # with every ctypes function of the bindings wrapped): ~30 calls in all.
    "wasmtime_component_valtype_equal",
    "wasmtime_component_valtype_delete",
    "wasmtime_component_func_type_param_nth",
    "wasmtime_component_func_type_result",
    "wasm_byte_vec_new",
    "wasm_byte_vec_delete",
    "wasmtime_component_resource_any_to_host",
    "wasmtime_component_resource_any_delete",
    "wasmtime_component_resource_host_delete",
    "wasmtime_component_val_new",
    "wasmtime_component_val_delete",
    "wasmtime_component_vallist_new_uninit",
    "wasmtime_component_valrecord_new_uninit",
]


PYTHONAPI: int = ctypes._FUNCFLAG_PYTHONAPI  # type: ignore[attr-defined]


def keeps_the_gil(function: Any) -> bool:
    """ctypes calls a function of a `PyDLL` (flag `FUNCFLAG_PYTHONAPI`) without releasing the GIL."""
    return bool(function._flags_ & PYTHONAPI)


def test_data_only_c_calls_keep_the_gil() -> None:
    """Fix 7: stock bindings release the GIL for every C call; with other threads waiting for it each
    release wakes one of them to find it taken again (8 streams: ~14 thread switches per event, half the
    engine's CPU, bench/RESULTS.md). The engine's bindings keep it for calls that only touch data."""
    from wasmtime import _bindings

    from skill_engine.runtime.boundary import borrows, calls, values

    with wasmtime_fixes.unapplied():
        assert not any(keeps_the_gil(getattr(_bindings, f"_{name}")) for name in PER_STREAM_EVENT)
    wasmtime_fixes.apply()
    assert [name for name in PER_STREAM_EVENT if not keeps_the_gil(getattr(_bindings, f"_{name}"))] == []
    # The boundary's own handles on C functions, bound at import.
    for function in (
        calls._param_nth,
        calls._result,
        calls._equal,
        calls._valtype_delete,
        values._byte_vec_new,
        borrows._to_host,
        borrows._any_delete,
        borrows._host_rep,
        borrows._host_type,
        borrows._host_delete,
    ):
        assert keeps_the_gil(function)


def test_c_calls_that_run_guest_code_still_release_the_gil() -> None:
    """Calling the guest, instantiating, dropping a resource (a guest destructor may run), compiling and
    deleting a store must let the event loop and other guests run meanwhile."""
    from wasmtime import _bindings

    from skill_engine.runtime.boundary import held

    wasmtime_fixes.apply()
    releasing = [
        "wasmtime_component_func_call",
        "wasmtime_component_func_post_return",
        "wasmtime_component_linker_instantiate",
        "wasmtime_component_resource_any_drop",
        "wasmtime_component_new",
        "wasmtime_component_deserialize_file",
        "wasmtime_store_delete",
        "wasmtime_func_call",
        "wasmtime_linker_instantiate",
    ]
    for name in releasing:
        assert not held.holds(name), name
        function = getattr(_bindings, f"_{name}", None)
        if function is not None:
            assert not keeps_the_gil(function), name
    assert held.holds("wasmtime_component_val_new")
    assert keeps_the_gil(_bindings._wasmtime_component_val_new)


def test_every_workaround_is_installed_and_unapplied_restores_the_stock_code() -> None:
    """Removing a workaround from `apply()` fails here; the behaviour tests above show what each fixes."""
    from wasmtime.component import _enter, _func, _linker, _types

    from skill_engine.runtime.boundary import calls

    wasmtime_fixes.apply()
    installed = {
        "exception routing (enter)": _enter.catch_exceptions,
        "exception routing (linker)": _linker.catch_exceptions,
        "exception re-raise": _enter.maybe_raise_last_exn,
        "variant lowering": type(_types.case_test_cache),
        "list<u8> lowering": _types.ListType.convert_to_c,
        "list<u8> lifting": _types.ListType.convert_from_c,
        "variant cases": _types.VariantType._cases,
        "host imports": _linker.LinkerInstance.add_func,
        "export calls": _func.Func.__call__,
    }
    assert installed == {
        "exception routing (enter)": wasmtime_fixes._catch_exceptions,
        "exception routing (linker)": wasmtime_fixes._catch_exceptions,
        "exception re-raise": wasmtime_fixes._maybe_raise_last_exn,
        "variant lowering": wasmtime_fixes._ThreadLocalSet,
        "list<u8> lowering": wasmtime_fixes._list_to_c,
        "list<u8> lifting": wasmtime_fixes._list_from_c,
        "variant cases": wasmtime_fixes._variant_cases,
        "host imports": calls.add_func,
        "export calls": calls.func_call,
    }
    with wasmtime_fixes.unapplied():
        assert _enter.catch_exceptions is not wasmtime_fixes._catch_exceptions
        assert _linker.catch_exceptions is not wasmtime_fixes._catch_exceptions
        assert not isinstance(_types.case_test_cache, wasmtime_fixes._ThreadLocalSet)
        assert _types.ListType.convert_to_c is not wasmtime_fixes._list_to_c
        assert _types.ListType.convert_from_c is not wasmtime_fixes._list_from_c
        assert _types.VariantType._cases is not wasmtime_fixes._variant_cases
        assert _linker.LinkerInstance.add_func is not calls.add_func
        assert _func.Func.__call__ is not calls.func_call
    with wasmtime_fixes.stock_calls():
        assert _func.Func.__call__ is not calls.func_call
        assert _types.ListType.convert_to_c is wasmtime_fixes._list_to_c
    assert _func.Func.__call__ is calls.func_call
    assert _types.ListType.convert_to_c is wasmtime_fixes._list_to_c
