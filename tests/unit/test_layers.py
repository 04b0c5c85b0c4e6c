"""The layering of docs/architecture.md holds: no import cycle anywhere in the package.

`make lint` checks the layer contracts (import-linter, pyproject.toml); this test adds what import-linter's
`acyclic_siblings` does not see: a package's `__init__` and its own submodules importing each other.
Function-local and TYPE_CHECKING imports count.
"""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("skill_engine", exclude_type_checking_imports=False)
    assert "skill_engine.app" in graph.modules  # the graph is the real package
    assert _cycles(graph) == []


def test_the_check_sees_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg", line_number=3, line_contents="from pkg import x")
    graph.add_import(importer="pkg", imported="pkg.a")
    graph.add_import(importer="pkg", imported="pkg.c")
    assert _cycles(graph) == [["pkg", "pkg.a", "pkg.b"]]
