"""Why instantiating a skill costs what it does: the function references a fresh instance initialises.

wasmtime builds a table's initial contents ahead of time, and then each function reference lazily on the
first indirect call through it, only for a table the module defines whose element segments have
constant offsets. Any other active segment is applied while the instance is made: every element costs a
function reference built on the spot (`Instance::get_func_ref`, two `CompiledFunctionsTable::func_loc`
lookups). componentize-py links CPython and every native extension as shared libraries that import one
`__indirect_function_table` and place their segments at an imported `__table_base`, so an SDK-built skill
initialises thousands of them per invocation (bench/RESULTS.md, "Session 11").

This reads a component's core modules (no wasmtime involved) and prints their element segments: how many
elements wasmtime can defer and how many it initialises at instantiation. Then it measures what that
costs: instantiating core modules with as many functions in one segment, placed three ways, the first
(a table of the module's own, a constant offset: deferred) being the baseline.

    .venv/bin/python -m bench.tables [skill.wasm ...]    # default: the `probe` test skill
    .venv/bin/python -m bench.tables --short             # the smoke run of `make test`

`--functions N` measures only the cost, with no component read or built, so it runs in any environment
that has `wasmtime` alone; that is how wasmtime releases compare (bench/RESULTS.md, "Session 13": 8,000
functions into an imported table cost ~6x more CPU from wasmtime 38 on than in 36):

    python3 -m venv /tmp/wt36 && /tmp/wt36/bin/pip install wasmtime==36.0.0
    PYTHONPATH=. /tmp/wt36/bin/python -m bench.tables --functions 8000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import wasmtime

_CORE_MODULE = 1
_NESTED_COMPONENT = 4
_CUSTOM, _IMPORT, _ELEMENT = 0, 2, 9
_I32_CONST, _GLOBAL_GET, _END = 0x41, 0x23, 0x0B


def _uleb(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _skip_expr(data: bytes, at: int) -> tuple[str, int]:
    """The constant expression's first instruction (`i32.const`, `global.get`, ...) and where it ends."""
    opcode = data[at]
    kind = {_I32_CONST: "i32.const", _GLOBAL_GET: "global.get"}.get(opcode, f"0x{opcode:02x}")
    while data[at] != _END:  # offsets and elements are single instructions with LEB immediates
        at += 1
    return kind, at + 1


def _name(data: bytes, at: int) -> tuple[str, int]:
    size, at = _uleb(data, at)
    return data[at : at + size].decode("utf-8", "replace"), at + size


def _sections(binary: bytes) -> Iterator[tuple[int, bytes]]:
    """(id, body) of each section of a core module or component binary, after its 8-byte preamble."""
    at = 8
    while at < len(binary):
        section = binary[at]
        size, at = _uleb(binary, at + 1)
        yield section, binary[at : at + size]
        at += size


def _limits(data: bytes, at: int) -> int:
    flags = data[at]
    _, at = _uleb(data, at + 1)
    if flags & 1:
        _, at = _uleb(data, at)
    return at


@dataclass
class CoreModule:
    index: int
    size: int
    name: str = ""
    imported_tables: int = 0
    deferred: int = 0
    """Elements wasmtime initialises lazily (a defined table, a constant offset)."""
    eager: int = 0
    """Elements applied while the instance is made."""
    segments: list[str] = field(default_factory=list)


def _parse_module(index: int, data: bytes) -> CoreModule:
    module = CoreModule(index, len(data))
    for section, body in _sections(data):
        if section == _CUSTOM:
            _read_name_section(module, body)
        elif section == _IMPORT:
            _read_imports(module, body)
        elif section == _ELEMENT:
            _read_elements(module, body)
    return module


def _read_name_section(module: CoreModule, body: bytes) -> None:
    name, at = _name(body, 0)
    if name != "name" or at >= len(body) or body[at] != 0:  # subsection 0: the module's name
        return
    _, at = _uleb(body, at + 1)
    module.name, _ = _name(body, at)


def _read_imports(module: CoreModule, body: bytes) -> None:
    count, at = _uleb(body, 0)
    for _ in range(count):
        _, at = _name(body, at)
        _, at = _name(body, at)
        kind = body[at]
        at += 1
        if kind == 0:  # function: type index
            _, at = _uleb(body, at)
        elif kind == 1:  # table: reference type, limits
            module.imported_tables += 1
            at = _limits(body, at + 1)
        elif kind == 2:  # memory: limits
            at = _limits(body, at)
        elif kind == 3:  # global: value type, mutability
            at += 2
        else:
            raise ValueError(f"core module {module.index}: unknown import kind {kind}")


def _read_elements(module: CoreModule, body: bytes) -> None:
    count, at = _uleb(body, 0)
    for _ in range(count):
        flags, at = _uleb(body, at)
        table = 0
        if flags in (2, 6):
            table, at = _uleb(body, at)
        offset = None
        if flags in (0, 2, 4, 6):  # active
            offset, at = _skip_expr(body, at)
        if flags in (1, 2, 3, 5, 6, 7):  # element kind or reference type
            at += 1
        elements, at = _uleb(body, at)
        for _ in range(elements):
            if flags < 4:
                _, at = _uleb(body, at)
            else:
                _, at = _skip_expr(body, at)
        if offset is None:
            module.segments.append(f"{elements} passive/declared")
            continue
        imported = table < module.imported_tables
        lazy = not imported and offset == "i32.const"
        if lazy:
            module.deferred += elements
        else:
            module.eager += elements
        where = "imported table" if imported else "own table"
        module.segments.append(f"{elements} at {offset} into its {where}")


def core_modules(data: bytes) -> list[CoreModule]:
    """Every core module of a component binary (nested components included), in binary order."""
    found: list[CoreModule] = []

    def walk(component: bytes) -> None:
        for section, body in _sections(component):
            if section == _CORE_MODULE:
                found.append(_parse_module(len(found), body))
            elif section == _NESTED_COMPONENT:
                walk(body)

    walk(data)
    return found


def _placements(n: int) -> dict[str, str]:
    functions = " ".join(f"(func $f{i} (result i32) i32.const {i})" for i in range(n))
    refs = " ".join(f"$f{i}" for i in range(n))
    table = f'(import "env" "table" (table {n} funcref))'
    return {
        "its own table, constant offset": f"(module (table {n} funcref) {functions} "
        f"(elem (i32.const 0) func {refs}))",
        "an imported table, constant offset": f"(module {table} {functions} "
        f"(elem (i32.const 0) func {refs}))",
        "an imported table, imported offset (as componentize-py)": f'(module {table} (import "env" "base" '
        f"(global i32)) {functions} (elem (global.get 0) func {refs}))",
    }


def instantiation_cost(n: int, runs: int) -> None:
    """Median thread CPU of instantiating a core module whose one segment holds `n` functions."""
    engine = wasmtime.Engine()
    print(f"Instantiating a core module with {n:,} functions in one element segment ({runs} runs each):\n")
    print("| segment into | instantiate ms | ratio |")
    print("|---|---|---|")
    baseline = None
    for placement, wat in _placements(n).items():
        module = wasmtime.Module(engine, wat)
        samples = []
        for _ in range(runs):
            store = wasmtime.Store(engine)
            imports: list[wasmtime.Table | wasmtime.Global] = []
            for item in module.imports:
                if isinstance(item.type, wasmtime.TableType):
                    ty = wasmtime.TableType(wasmtime.ValType.funcref(), wasmtime.Limits(n, None))
                    imports.append(wasmtime.Table(store, ty, None))
                else:
                    ty_global = wasmtime.GlobalType(wasmtime.ValType.i32(), False)
                    imports.append(wasmtime.Global(store, ty_global, wasmtime.Val.i32(0)))
            started = time.thread_time()
            wasmtime.Instance(store, module, imports)
            samples.append(time.thread_time() - started)
        ms = statistics.median(samples) * 1000
        baseline = baseline or ms
        print(f"| {placement} | {ms:.3f} | {ms / baseline:.0f}x |")
    print("\nratio = instantiation CPU / the deferred placement's, in the same run\n")


def report(path: Path) -> int:
    """Prints the component's segments; returns how many elements it initialises eagerly."""
    modules = core_modules(path.read_bytes())
    print(f"{path.name}: {len(modules)} core modules\n")
    print("| core module | name | bytes | element segments | deferred | eager |")
    print("|---|---|---|---|---|---|")
    for m in modules:
        if m.segments:
            segments = "; ".join(m.segments)
            print(f"| {m.index} | {m.name or '-'} | {m.size:,} | {segments} | {m.deferred:,} | {m.eager:,} |")
    deferred = sum(m.deferred for m in modules)
    eager = sum(m.eager for m in modules)
    total = deferred + eager
    share = eager / total if total else 0.0
    print(
        f"\n{eager:,} of {total:,} function references are initialised at every instantiation "
        f"({share:.2f}x of all; deferred until first use: {deferred:,})\n"
    )
    return eager


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("wasm", nargs="*", type=Path, help="components to read (default: the probe skill)")
    parser.add_argument(
        "--short", action="store_true", help="the probe skill, a small measurement (a smoke run)"
    )
    parser.add_argument(
        "--functions", type=int, help="only measure instantiating this many functions (no component)"
    )
    args = parser.parse_args()
    if args.functions is not None and (args.functions < 1 or args.wasm):
        parser.error("--functions takes a count of at least 1 and no components")
    print(f"wasmtime {version('wasmtime')}\n")
    if args.functions is not None:
        instantiation_cost(args.functions, 300)
        return
    from tests.support.skills import build_skill  # needs the project's environment

    eager = 0
    for path in args.wasm or [build_skill("probe")]:
        eager = max(eager, report(path))
    if args.short:
        instantiation_cost(500, 10)
    else:
        instantiation_cost(eager or 8000, 300)


if __name__ == "__main__":
    main()
