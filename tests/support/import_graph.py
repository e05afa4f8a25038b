"""The import graph of a package, read from its source (nothing is imported).

Every `import` / `from ... import` of a module inside the package becomes an edge, tagged with
where it stands:

- ``top``: runs when the module is imported (module level, also inside a module-level ``if`` or
  ``try``);
- ``typing``: inside ``if TYPE_CHECKING:``, so only the type checker follows it;
- ``function``: inside a function body, so it runs on the first call; a cycle hidden this way is
  still a cycle in the design.

``python -m tests.support.import_graph [PACKAGE_DIR]`` prints the strongly connected components
(counting every kind of edge) and the function-level imports.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["top", "typing", "function"]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: Kind
    line: int


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name of every module under package directory `root` (`root.name` is the package)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, Kind]]:
    def walk(nodes: Iterable[ast.AST], kind: Kind) -> Iterator[tuple[ast.Import | ast.ImportFrom, Kind]]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node, kind
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield from walk(ast.iter_child_nodes(node), "function")
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                inner: Kind = "function" if kind == "function" else "typing"
                yield from walk(node.body, inner)
                yield from walk(node.orelse, kind)
            else:
                yield from walk(ast.iter_child_nodes(node), kind)

    yield from walk(tree.body, "top")


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules the statement imports, as absolute names: a module of `known` where the
    name is one (`from . import x` imports the submodule `x`), else the name as imported."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base_parts = package[: len(package) - (node.level - 1)]
        base = ".".join([*base_parts, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    return {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}


@dataclass(frozen=True)
class Import:
    source: str
    target: str  # absolute: `baton._settings`, `pydantic`, `aio_pika.connection`
    kind: Kind
    line: int


def imports(root: Path) -> list[Import]:
    """Every import statement of the package, one entry per module it imports."""
    names = module_names(root)
    known = set(names)
    found: list[Import] = []
    for module, path in names.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, kind in _imports(tree):
            for target in sorted(_targets(node, module, path.name == "__init__.py", known)):
                if target != module:
                    found.append(Import(module, target, kind, node.lineno))
    return found


def edges(root: Path) -> list[Edge]:
    """The imports between the package's own modules."""
    known = set(module_names(root))
    return [Edge(i.source, i.target, i.kind, i.line) for i in imports(root) if i.target in known]


def strongly_connected(nodes: Iterable[str], graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return sorted(components, key=len, reverse=True)


def cycles(root: Path, kinds: Iterable[Kind] = ("top", "typing", "function")) -> list[list[str]]:
    wanted = set(kinds)
    graph: dict[str, set[str]] = {}
    for edge in edges(root):
        if edge.kind in wanted:
            graph.setdefault(edge.source, set()).add(edge.target)
    return strongly_connected(sorted(module_names(root)), graph)


def function_level_imports(root: Path) -> list[Import]:
    """Every import inside a function, of the package's own modules or any other."""
    return [i for i in imports(root) if i.kind == "function"]


def main(argv: list[str]) -> None:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "sdk" / "baton"
    for label, kinds in (
        ("top-level imports only", ("top",)),
        ("top-level + TYPE_CHECKING", ("top", "typing")),
        ("top-level + TYPE_CHECKING + function-level", ("top", "typing", "function")),
    ):
        components = cycles(root, kinds)  # type: ignore[arg-type]
        sizes = [len(c) for c in components]
        print(f"{label}: {len(components)} cycle(s), sizes {sizes}")
        for component in components:
            print("   ", " ".join(component))
    inner = function_level_imports(root)
    known = set(module_names(root))
    own = [i for i in inner if i.target in known]
    print(f"function-level imports: {len(inner)} ({len(own)} of {root.name}'s own modules)")
    for i in inner:
        print(f"    {i.source}:{i.line} {i.target}")


if __name__ == "__main__":
    main(sys.argv[1:])
