"""One definition of each shape: what crosses a process boundary is written in `baton_schemas`
only, and the SDK and the server import it from there.

Read from the source (nothing is imported but `baton_schemas`): a second copy of a model, of a
broker name or of a run-name generator in `baton` or `baton_server` fails here, naming where.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

import baton_schemas
from baton_schemas import topology

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (ROOT / "sdk" / "baton", ROOT / "services" / "baton_server")

# Public names of baton_schemas that the SDK or the server define again on purpose, for another
# thing: never a copy of the shape.
SAME_NAME_OTHER_THING = {
    # baton_schemas.flows.Flow is a flow as the server registers it; baton.Flow is the decorator.
    ("Flow", "sdk/baton/_flows.py"),
    # baton_schemas.pools.Worker is a worker as the server lists it; this is the worker process.
    ("Worker", "sdk/baton/_worker/_worker.py"),
}


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (prose may name an exchange)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _schema_modules() -> list[object]:
    return [
        importlib.import_module(f"baton_schemas.{info.name}")
        for info in pkgutil.iter_modules(baton_schemas.__path__)
        if not info.name.startswith("_")
    ]


def _topology_words() -> tuple[set[str], tuple[str, ...]]:
    """The names topology defines (exchanges, queues, queue arguments) and the fixed beginnings
    of the names it builds from ids (`baton.pool.`, `flow-run.`...)."""
    names = {
        value
        for key, value in vars(topology).items()
        if key.isupper() and isinstance(value, str) and "." in value
    }
    names |= {
        key
        for build in (topology.quorum_arguments(1), topology.tracker_rpc_queue_arguments())
        for key in build
    }
    marker = "\x00"
    prefixes = tuple(
        build(*[marker] * len(inspect.signature(build).parameters)).split(marker)[0]
        for build in (
            topology.pool_queue_name,
            topology.worker_control_queue,
            topology.worker_control_key,
            topology.flow_run_control_key,
        )
    )
    return names, prefixes


def test_topology_names_are_written_only_in_baton_schemas() -> None:
    names, prefixes = _topology_words()
    assert {"baton.control", "baton.runs", "baton.tracker.rpc", "x-delivery-limit"} <= names
    assert set(prefixes) == {"baton.pool.", "baton.worker.", "worker.", "flow-run."}
    found = []
    for where, tree in _sources():
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                head = node.values[0] if node.values else None
                if isinstance(head, ast.Constant) and str(head.value).startswith(prefixes):
                    found.append(f"{where}:{node.lineno} f{head.value!r}...")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and (node.value in names or node.value.startswith(prefixes))
            ):
                found.append(f"{where}:{node.lineno} {node.value!r}")
    assert not found, "use the names of baton_schemas.topology instead:\n" + "\n".join(found)


def test_no_model_of_baton_schemas_is_defined_again() -> None:
    """A pydantic model on Baton's bases (or extending one of its models) is a shape that
    crosses a process boundary: it belongs in baton_schemas."""
    models = {
        name
        for module in _schema_modules()
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseModel)
        and value.__module__.startswith("baton_schemas")
    }
    assert {"BatonModel", "ClientModel", "Envelope", "State", "SetState", "FlowRunPage"} <= models
    found = []
    for where, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & models:
                    found.append(f"{where}:{node.lineno} class {node.name}({', '.join(sorted(bases))})")
    assert not found, "move these models into baton_schemas:\n" + "\n".join(found)


def test_no_public_name_of_baton_schemas_is_defined_again() -> None:
    """Constants, functions and classes: one definition (e.g. one run-name generator)."""
    public = {
        name
        for module in _schema_modules()
        for name, value in vars(module).items()
        if not name.startswith("_")
        and getattr(value, "__module__", module.__name__) == module.__name__  # type: ignore[attr-defined]
        and not isinstance(value, type(topology))
    }
    public |= {name for name in vars(topology) if name.isupper()}
    assert {"run_name", "pool_queue_name", "DEAD_QUEUE", "Page"} <= public
    found = set()
    for where, tree in _sources():
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined = [node.name]
            elif isinstance(node, ast.Assign) and not _is_type_var(node.value):
                defined = [t.id for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                defined = [node.target.id]
            else:
                continue
            found |= {(name, where) for name in defined if name in public}
    assert found == SAME_NAME_OTHER_THING, "defined again outside baton_schemas: " + repr(
        sorted(found - SAME_NAME_OTHER_THING)
    )


def _is_type_var(value: ast.expr) -> bool:
    return isinstance(value, ast.Call) and getattr(value.func, "id", "") in {"TypeVar", "ParamSpec"}
