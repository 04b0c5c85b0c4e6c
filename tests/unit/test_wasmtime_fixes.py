"""Regression tests for the wasmtime-py 50.0.1 workarounds in `skill_engine.runtime.wasmtime_fixes`.

Each test fails when its fix is taken out (`wasmtime_fixes.unapplied()`): the concurrency ones under a
tiny thread switch interval, where stock wasmtime-py mixes up exceptions and variant cases.
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
from wasmtime.component import Component, FuncType, Linker, ResourceType, Variant

from skill_engine.runtime import wasmtime_fixes
from skill_engine.runtime.compiler import ArtifactCache, Compiler
from skill_engine.runtime.engine import make_config


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

    linker = Linker(engine)
    linker.add_wasip2()
    with linker.root() as root:
        for interface, item in component.type.imports(engine).items():
            if not interface.startswith("pharia:"):
                continue
            with root.add_instance(interface) as instance:
                for n, (name, extern) in enumerate(item.ty.exports(engine).items()):
                    if isinstance(extern.ty, ResourceType):
                        instance.add_resource(name, ResourceType.host(100 + n), lambda _s, _r: None)
                    elif isinstance(extern.ty, FuncType):
                        instance.add_func(name, raiser)
    return linker


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


def test_every_workaround_is_installed_and_unapplied_restores_the_stock_code() -> None:
    """Removing a workaround from `apply()` fails here; the behaviour tests above show what each fixes."""
    from wasmtime.component import _enter, _linker, _types

    wasmtime_fixes.apply()
    installed = {
        "exception routing (enter)": _enter.catch_exceptions,
        "exception routing (linker)": _linker.catch_exceptions,
        "exception re-raise": _enter.maybe_raise_last_exn,
        "variant lowering": type(_types.case_test_cache),
        "list<u8> lowering": _types.ListType.convert_to_c,
        "list<u8> lifting": _types.ListType.convert_from_c,
    }
    assert installed == {
        "exception routing (enter)": wasmtime_fixes._catch_exceptions,
        "exception routing (linker)": wasmtime_fixes._catch_exceptions,
        "exception re-raise": wasmtime_fixes._maybe_raise_last_exn,
        "variant lowering": wasmtime_fixes._ThreadLocalSet,
        "list<u8> lowering": wasmtime_fixes._list_to_c,
        "list<u8> lifting": wasmtime_fixes._list_from_c,
    }
    with wasmtime_fixes.unapplied():
        assert _enter.catch_exceptions is not wasmtime_fixes._catch_exceptions
        assert _linker.catch_exceptions is not wasmtime_fixes._catch_exceptions
        assert not isinstance(_types.case_test_cache, wasmtime_fixes._ThreadLocalSet)
        assert _types.ListType.convert_to_c is not wasmtime_fixes._list_to_c
        assert _types.ListType.convert_from_c is not wasmtime_fixes._list_from_c
    assert _types.ListType.convert_to_c is wasmtime_fixes._list_to_c
