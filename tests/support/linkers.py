"""A wasmtime Linker that satisfies a component's `pharia:` imports with stand-ins, for tests and benches that
call a real component without the engine's host bindings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import wasmtime
from wasmtime.component import Component, FuncType, Linker, ResourceType


def stub_linker(
    engine: wasmtime.Engine,
    component: Component,
    function: Callable[[str], Callable[..., Any]],
    resource_ids: Mapping[str, int] | None = None,
) -> Linker:
    """WASI plus every `pharia:` import of `component`: each function is `function(<its name>)`, each
    resource a host resource with a no-op destructor and the type id `resource_ids` names (else 100 + its
    position in the interface)."""
    ids = resource_ids or {}
    linker = Linker(engine)
    linker.add_wasip2()
    with linker.root() as root:
        for interface, item in component.type.imports(engine).items():
            if not interface.startswith("pharia:"):
                continue
            with root.add_instance(interface) as instance:
                for n, (name, extern) in enumerate(item.ty.exports(engine).items()):
                    if isinstance(extern.ty, ResourceType):
                        type_id = ids.get(name, 100 + n)
                        instance.add_resource(name, ResourceType.host(type_id), lambda _s, _r: None)
                    elif isinstance(extern.ty, FuncType):
                        instance.add_func(name, function(name))
    return linker
