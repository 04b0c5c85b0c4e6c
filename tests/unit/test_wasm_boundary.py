"""The boundary fast path (`runtime/boundary/`, fixes 5 and 6 in
`wasmtime_fixes`): the same values as stock wasmtime-py for every type real components of each WIT line
pass, and the type trees are built once per function type instead of on every call.

The round trips cross the two implementations (ours lowers, stock lifts, and the other way round), over
sample values of every parameter and result type of every import and export of components built for
`pharia:skill` 0.2, 0.3, 0.4 and 0.5; the guest-facing behaviour is covered end to end by the e2e tests
(tests/e2e/test_wit_versions.py, test_wit_alpha.py, test_stream.py, test_csi_*.py).
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component import (
    Component,
    FuncType,
    Linker,
    Record,
    ResourceHost,
    ResourceType,
    Variant,
    _linker,
    _types,
)

from skill_engine.runtime import wasmtime_fixes
from skill_engine.runtime.boundary import calls as wasm_calls
from skill_engine.runtime.boundary import convert as wasm_convert
from skill_engine.runtime.compiler import ArtifactCache, Compiler
from skill_engine.runtime.engine import make_config
from skill_engine.runtime.runner import inspect_component
from tests.support.linkers import stub_linker
from tests.support.skills import WIT, build_raw_skill, unstable_copy


@pytest.fixture(scope="module")
def engine() -> wasmtime.Engine:
    wasmtime_fixes.apply()
    return wasmtime.Engine(make_config())


def load(engine: wasmtime.Engine, wasm: Path, compiled_cache: Path) -> Component:
    compiler = Compiler(ArtifactCache(compiled_cache, 10 * 1024**3))
    artifact = asyncio.run(compiler.compiled(wasm.read_bytes(), wasm.stem))
    return Component.deserialize_file(engine, str(artifact))


@pytest.fixture(scope="module")
def components(
    engine: wasmtime.Engine, probe_wasm: Path, streamer_wasm: Path, compiled_cache: Path
) -> dict[str, Component]:
    wasms = {
        "0.2": build_raw_skill("wit_v0_2", WIT / "skill@0.2", "skill"),
        "0.3": probe_wasm,
        "0.3 stream": streamer_wasm,
        "0.4": build_raw_skill("wit_v0_4_stream", WIT / "skill@0.4", "message-stream-skill"),
        "0.5": build_raw_skill(
            "wit_v0_4", unstable_copy(WIT / "skill@0.4", "0.5.0", "alpha"), "skill", "alpha"
        ),
    }
    return {line: load(engine, wasm, compiled_cache) for line, wasm in wasms.items()}


def function_types(engine: wasmtime.Engine, component: Component) -> dict[str, FuncType]:
    """Every function a component imports from `pharia:skill` or exports, by `interface#name`."""
    found: dict[str, FuncType] = {}
    items = {**component.type.imports(engine), **component.type.exports(engine)}
    for interface, item in items.items():
        if not interface.startswith("pharia:"):
            continue
        for name, extern in item.ty.exports(engine).items():
            if isinstance(extern.ty, FuncType):
                found[f"{interface}#{name}"] = extern.ty
    return found


def samples(ty: Any) -> list[Any]:
    """A few values of `ty`, covering each case of variants, options, results and enums; [] if `ty`
    holds something without a plain value (resources)."""
    simple: dict[type, list[Any]] = {
        _types.Bool: [True, False],
        _types.S32: [0, -7],
        _types.S64: [-(2**40)],
        _types.U8: [255],
        _types.U32: [0, 4096],
        _types.U64: [2**40],
        _types.F32: [0.5, -2.0],
        _types.F64: [0.25, 1e300],
        _types.Char: ["x", "€"],
        _types.String: ["", "héllo wörld", "🙂"],
    }
    if type(ty) in simple:
        return simple[type(ty)]
    if isinstance(ty, _types.ListType):
        if ty._is_bytes():
            return [b"", bytes(range(256))]
        element = samples(ty.element)
        return [[], element[:3]] if element else []
    if isinstance(ty, _types.RecordType):
        per_field = [(name, samples(field)) for name, field in ty.fields]
        if any(not values for _, values in per_field):
            return []
        out = []
        for pick in (0, -1):
            value = Record()
            for name, values in per_field:
                setattr(value, name, values[pick])
            out.append(value)
        return out
    if isinstance(ty, _types.TupleType):
        elements = [samples(e) for e in ty.elements]
        return [tuple(e[0] for e in elements)] if all(elements) else []
    if isinstance(ty, _types.EnumType):
        return list(ty.names)
    if isinstance(ty, _types.VariantLikeType):
        tagged = ty._tagged()
        out = []
        for name, case in ty._cases():
            payloads = [None] if case is None else samples(case)[:2]
            for payload in payloads:
                out.append(Variant(name, payload) if tagged else payload)
        return out
    return []


def round_trips(ty: Any, store: wasmtime.Store, value: Any) -> list[Any]:
    """`value` lowered by ours and lifted by stock, and lowered by stock and lifted by ours."""
    lower, lift = wasm_convert.lowerer(ty), wasm_convert.lifter(ty)
    ours = ffi.wasmtime_component_val_t()
    lower(store, value, ours)
    stock = ffi.wasmtime_component_val_t()
    ty.convert_to_c(store, value, ctypes.pointer(stock))
    return [ty.convert_from_c(ours), lift(stock)]


def test_every_value_shape_of_every_wit_line_round_trips_like_stock(
    engine: wasmtime.Engine, components: dict[str, Component]
) -> None:
    store = wasmtime.Store(engine)
    checked: dict[str, int] = {}
    failures: list[str] = []
    for line, component in components.items():
        for function, fty in function_types(engine, component).items():
            types = [ty for _, ty in fty.params] + ([fty.result] if fty.result is not None else [])
            for ty in types:
                for value in samples(ty):
                    checked[line] = checked.get(line, 0) + 1
                    for back in round_trips(ty, store, value):
                        if not (back == value and value == back and type(back) is type(value)):
                            failures.append(f"{line} {function}: {value!r} came back as {back!r}")
    assert failures == []
    # Every line contributes real shapes (records, variants, options, enums, lists of records, strings).
    assert set(checked) == {"0.2", "0.3", "0.3 stream", "0.4", "0.5"}
    assert all(count >= 10 for count in checked.values()), checked


@pytest.mark.parametrize(
    "value",
    [object(), 3, "text", Variant("no-such-case"), [1], None],
    ids=["object", "int", "str", "unknown-case", "list", "none"],
)
def test_a_value_of_the_wrong_shape_fails_as_on_stock(
    engine: wasmtime.Engine, components: dict[str, Component], value: Any
) -> None:
    """Wrong values raise the same exception type and message as stock wasmtime-py."""
    store = wasmtime.Store(engine)
    compared = 0
    for fty in function_types(engine, components["0.3"]).values():
        for _, ty in fty.params:
            if not samples(ty) or isinstance(ty, _types.RecordType):
                continue  # stock reads record fields with getattr: AttributeError either way
            try:
                ty.convert_to_c(store, value, ctypes.pointer(ffi.wasmtime_component_val_t()))
                stock = "accepted"
            except Exception as e:
                stock = f"{type(e).__name__}: {e}"
            try:
                wasm_convert.lowerer(ty)(store, value, ffi.wasmtime_component_val_t())
                ours = "accepted"
            except Exception as e:
                ours = f"{type(e).__name__}: {e}"
            assert ours == stock, f"{ty!r}: {ours} != {stock}"
            compared += 1
    assert compared > 5


# -- built once per function type instead of per call (fails with the fixes unapplied) ----------------


def tree_walks_in_calls(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, component: Component
) -> int:
    """How many value types are built from the C API during the 2nd to 4th of four `run` export calls,
    each calling host imports that lift their arguments (a `chat` call) and then raise."""

    class Raised(Exception):
        pass

    lifted: list[int] = []

    def raiser(_store: Any, *args: Any) -> Any:
        lifted.append(len(args))
        raise Raised

    linker = stub_linker(engine, component, lambda _name: raiser)
    interface = component.get_export_index("pharia:skill/skill-handler@0.3.11")
    run = component.get_export_index("run", interface)
    counted = [0]
    stock = _types.valtype_from_ptr

    def counting(*args: Any) -> Any:
        counted[0] += 1
        return stock(*args)

    for call in range(4):
        if call == 1:
            monkeypatch.setattr(_types, "valtype_from_ptr", counting)
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 40)
        with pytest.raises(Raised):
            linker.instantiate(store, component).get_func(store, run)(store, b'{"mode":"chat","text":"x"}')
        store.close()
    monkeypatch.undo()
    assert lifted == [1, 1, 1, 1]  # the host import was reached and lifted its request every time
    return counted[0]


def test_function_types_are_not_rebuilt_on_every_call(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine, components: dict[str, Component]
) -> None:
    """Fixes 5 and 6: stock wasmtime-py rebuilds the Python type tree of a host import on every call
    (`func_impl`) and of an export on every call (`Func.__call__`); counted rather than timed."""
    with wasmtime_fixes.unapplied():
        assert tree_walks_in_calls(monkeypatch, engine, components["0.3"]) > 3 * 5
    assert tree_walks_in_calls(monkeypatch, engine, components["0.3"]) == 0


def test_a_host_function_caches_one_signature_per_function_type(engine: wasmtime.Engine) -> None:
    """Two components importing the same name with different types each get their own converters (a
    cache keyed by the definition alone would hand one the other's), and the cache stays bounded."""
    component_of = {
        ty: Component(
            engine,
            f"""(component
              (import "host" (instance $h (export "f" (func (param "x" {ty}) (result {ty})))))
              (core func $f (canon lower (func $h "f")))
              (core module $m (import "" "f" (func $f {core})) (func (export "call") {body}))
              (core instance $i (instantiate $m (with "" (instance (export "f" (func $f))))))
              (func (export "call") (canon lift (core func $i "call"))))""",
        )
        for ty, core, body in [
            ("u32", "(param i32) (result i32)", "(drop (call $f (i32.const 7)))"),
            ("bool", "(param i32) (result i32)", "(drop (call $f (i32.const 1)))"),
        ]
    }
    seen: list[Any] = []

    def echo(_store: Any, x: Any) -> Any:
        seen.append(x)
        return x

    linker = Linker(engine)
    with linker.root() as root, root.add_instance("host") as instance:
        instance.add_func("f", echo)
    for _ in range(2):
        for component in component_of.values():
            store = wasmtime.Store(engine)
            store.set_epoch_deadline(1 << 40)
            linker.instantiate(store, component).get_func(store, "call")(store)
    assert seen == [7, True, 7, True]
    hosts = [f for f in _linker.FUNCTIONS.handles.values() if getattr(f, "func", None) is echo]
    assert len(hosts) == 1 and len(hosts[0].signatures) == 2
    # Bounded: a cache of one keeps one, and still answers each type with its own signature.
    cache = wasm_calls.SignatureCache(1)
    for _ in range(2):
        for component in component_of.values():
            fty = component.type.exports(engine)["call"].ty
            assert cache.get(fty.ptr()).nparams == 0
            assert len(cache) == 1


def test_host_calls_from_many_threads_keep_their_own_values(engine: wasmtime.Engine) -> None:
    """The signature cache is shared by threads calling the same host function at once."""
    component = Component(
        engine,
        """(component
          (import "host" (instance $h (export "f" (func (param "x" u32) (result u32)))))
          (core func $f (canon lower (func $h "f")))
          (core module $m (import "" "f" (func $f (param i32) (result i32)))
            (func (export "call") (param i32) (result i32) (call $f (local.get 0))))
          (core instance $i (instantiate $m (with "" (instance (export "f" (func $f))))))
          (func (export "call") (param "x" u32) (result u32) (canon lift (core func $i "call"))))""",
    )
    linker = Linker(engine)
    with linker.root() as root, root.add_instance("host") as instance:
        instance.add_func("f", lambda _store, x: x * 2)
    wrong: list[tuple[int, Any]] = []

    def work(base: int) -> None:
        store = wasmtime.Store(engine)
        store.set_epoch_deadline(1 << 40)
        call = linker.instantiate(store, component).get_func(store, "call")
        for i in range(200):
            got = call(store, base + i)
            if got != 2 * (base + i):
                wrong.append((base + i, got))

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


TWO_VERSIONS = """(component
  (import "host:x/h@0.1.0" (instance $a (export "f" (func (param "x" u32) (result u32)))))
  (import "host:x/h@0.1.1" (instance $b (export "f" (func (param "x" bool) (result bool)))))
  (core func $fa (canon lower (func $a "f")))
  (core func $fb (canon lower (func $b "f")))
  (core module $m
    (import "" "a" (func $fa (param i32) (result i32)))
    (import "" "b" (func $fb (param i32) (result i32)))
    (func (export "call") (drop (call $fa (i32.const 7))) (drop (call $fb (i32.const 1)))
      (drop (call $fa (i32.const 8)))))
  (core instance $i (instantiate $m (with "" (instance (export "a" (func $fa)) (export "b" (func $fb))))))
  (func (export "call") (canon lift (core func $i "call"))))"""


def test_host_calls_in_one_export_call_match_their_type_once(
    monkeypatch: pytest.MonkeyPatch, engine: wasmtime.Engine
) -> None:
    """Inside `typed_once()` a host function's type is compared once per export call, not per call;
    outside it, every call compares. Counted rather than timed."""
    component = Component(
        engine,
        """(component
          (import "host:x/h@0.1.0" (instance $h (export "f" (func (param "x" u32) (result u32)))))
          (core func $f (canon lower (func $h "f")))
          (core module $m (import "" "f" (func $f (param i32) (result i32)))
            (func (export "call") (param i32) (result i32) (local $n i32)
              (loop $again
                (local.set 0 (call $f (local.get 0)))
                (local.set $n (i32.add (local.get $n) (i32.const 1)))
                (br_if $again (i32.lt_u (local.get $n) (i32.const 10))))
              (local.get 0)))
          (core instance $i (instantiate $m (with "" (instance (export "f" (func $f))))))
          (func (export "call") (param "x" u32) (result u32) (canon lift (core func $i "call"))))""",
    )
    assert wasm_calls.one_type_per_import(component.type.imports(engine))
    linker = Linker(engine)
    with linker.root() as root, root.add_instance("host:x/h@0.1.0") as instance:
        instance.add_func("f", lambda _store, x: x + 1)
    lookups = 0
    original = wasm_calls.SignatureCache.get

    def counted(self: Any, *args: Any) -> Any:
        nonlocal lookups
        lookups += 1
        return original(self, *args)

    monkeypatch.setattr(wasm_calls.SignatureCache, "get", counted)

    def lookups_of_one_call(typed_once: bool) -> int:
        nonlocal lookups
        store = wasmtime.Store(engine)
        store.set_epoch_deadline(1 << 40)
        call = linker.instantiate(store, component).get_func(store, "call")
        lookups = 0
        if typed_once:
            with wasm_calls.typed_once():
                assert call(store, 5) == 15
        else:
            assert call(store, 5) == 15
        return lookups - 1  # the export call's own lookup

    assert lookups_of_one_call(typed_once=False) == 10
    assert lookups_of_one_call(typed_once=True) == 1
    assert lookups_of_one_call(typed_once=True) == 1  # a new export call compares again


def test_two_versions_of_one_interface_reach_one_host_function_with_two_types(
    engine: wasmtime.Engine,
) -> None:
    """Why `typed_once()` is kept for components with `one_type_per_import`: imports of two versions of an
    interface resolve to one definition, each with its own type, so within one export call one host
    function is called with a u32 and with a bool. Each call still gets its own converters."""
    component = Component(engine, TWO_VERSIONS)
    assert not wasm_calls.one_type_per_import(component.type.imports(engine))
    seen: list[Any] = []

    def echo(_store: Any, x: Any) -> Any:
        seen.append(x)
        return x

    linker = Linker(engine)
    with linker.root() as root, root.add_instance("host:x/h@0.1.1") as instance:
        instance.add_func("f", echo)
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 40)
    linker.instantiate(store, component).get_func(store, "call")(store)
    assert seen == [7, True, 8]


@pytest.mark.parametrize(
    ("names", "one_type"),
    [
        (["wasi:cli/exit@0.2.0", "pharia:skill/inference@0.3.11", "pharia:skill/chunking@0.3.11"], True),
        (["pharia:skill/inference@0.3.0", "pharia:skill/inference@0.3.11"], False),
        (["pharia:skill/inference", "pharia:skill/inference@0.3.0"], False),
        ([], True),
    ],
)
def test_one_type_per_import_compares_names_without_versions(names: list[str], one_type: bool) -> None:
    assert wasm_calls.one_type_per_import(names) is one_type


def test_sdk_built_skills_of_every_wit_line_have_one_type_per_import(
    engine: wasmtime.Engine, components: dict[str, Component]
) -> None:
    """The engine's export calls of SDK-built skills run inside `typed_once()` (runtime/runner.py)."""
    for line, component in components.items():
        assert inspect_component(engine, component, alpha=line == "0.5").one_type_per_import, line


BORROWING = """(component
  (import "host:x/r" (instance $h
    (export "res" (type $res (sub resource)))
    (export "[constructor]res" (func (result (own $res))))
    (export "[method]res.get" (func (param "self" (borrow $res)) (result u32)))))
  (alias export $h "res" (type $res))
  (core func $new (canon lower (func $h "[constructor]res")))
  (core func $get (canon lower (func $h "[method]res.get")))
  (core func $drop (canon resource.drop $res))
  (core module $m
    (import "" "new" (func $new (result i32)))
    (import "" "get" (func $get (param i32) (result i32)))
    (import "" "drop" (func $drop (param i32)))
    (func (export "call") (param $n i32) (result i32) (local $r i32) (local $sum i32)
      (local.set $r (call $new))
      (loop $again
        (local.set $sum (i32.add (local.get $sum) (call $get (local.get $r))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br_if $again (i32.gt_s (local.get $n) (i32.const 0))))
      (call $drop (local.get $r))
      (local.get $sum)))
  (core instance $i (instantiate $m (with "" (instance
    (export "new" (func $new)) (export "get" (func $get)) (export "drop" (func $drop))))))
  (func (export "call") (param "n" s32) (result u32) (canon lift (core func $i "call"))))"""


def borrowing_call(engine: wasmtime.Engine, get: Any, calls: int = 3) -> int:
    """Runs BORROWING's export: one host resource (rep 41, type 7), `calls` method calls on it."""
    component = Component(engine, BORROWING)
    linker = Linker(engine)
    with linker.root() as root, root.add_instance("host:x/r") as instance:
        instance.add_resource("res", ResourceType.host(7), lambda _store, _rep: None)
        instance.add_func("[constructor]res", lambda _store: ResourceHost.own(41, 7))
        instance.add_func("[method]res.get", get)
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 40)
    call = linker.instantiate(store, component).get_func(store, "call")
    try:
        return int(call(store, calls))
    finally:
        store.close()


def test_a_borrowed_self_reaches_the_host_as_its_resource_like_stock(engine: wasmtime.Engine) -> None:
    """A method's `self` (`borrow<T>`) lifts without wasmtime-py's two wrapper objects (boundary/borrows.py),
    and bindings written for stock wasmtime-py see the same resource: `to_host(store)` answers its rep and
    type, and many calls on one handle keep working."""
    seen: list[tuple[int, int]] = []

    def get(store: Any, self_: Any) -> int:
        host = self_.to_host(store)
        seen.append((host.rep, host.type))
        return int(host.rep)

    with wasmtime_fixes.stock_calls():
        assert borrowing_call(engine, get) == 3 * 41
    stock, seen[:] = list(seen), []
    assert borrowing_call(engine, get, calls=500) == 500 * 41
    assert stock == [(41, 7)] * 3
    assert seen == [(41, 7)] * 500


def test_converting_a_borrow_again_answers_the_same_resource(engine: wasmtime.Engine) -> None:
    """Stock fails a second `to_host` of one borrow (the first released it: "unknown handle index");
    a `Borrowed` keeps what the first answered."""

    def twice(store: Any, self_: Any) -> int:
        first, again = self_.to_host(store), self_.to_host(store)
        assert (again.rep, again.type) == (first.rep, first.type) == (41, 7)
        return int(again.rep)

    with wasmtime_fixes.stock_calls(), pytest.raises(wasmtime.WasmtimeError, match="unknown handle"):
        borrowing_call(engine, twice)
    assert borrowing_call(engine, twice) == 3 * 41


def test_a_borrow_the_host_never_converts_fails_the_call_as_on_stock(engine: wasmtime.Engine) -> None:
    """wasmtime requires a host function to release a borrow it was given within the call; one that never
    converts it fails the export call with the same error as on stock, and the next call works."""

    def careless(_store: Any, _self: Any) -> int:
        return 1

    errors = []
    for stock in (True, False):
        context = wasmtime_fixes.stock_calls() if stock else nullcontext()
        with context, pytest.raises(wasmtime.WasmtimeError) as failure:
            borrowing_call(engine, careless)
        errors.append(str(failure.value).splitlines()[0])
    assert errors[0] == errors[1]
    assert borrowing_call(engine, lambda store, self_: self_.to_host(store).rep) == 3 * 41
