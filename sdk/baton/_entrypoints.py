"""Load a flow from its entrypoint: `path/to/file.py:function` or `package.module:function`.

The worker's run process loads a deployment's flow this way, and `baton deploy` checks each
entrypoint of baton.yaml by loading it the same way.

A file path is relative to the working directory (after the pull steps ran); its folder goes
first on `sys.path`, so the flow's sibling modules import as they would with `python file.py`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any

from ._definitions import FlowDefinition


class EntrypointError(Exception):
    """The flow could not be loaded; the message says why, for the run's state."""


def _split(entrypoint: str) -> tuple[str, str]:
    where, sep, name = entrypoint.rpartition(":")
    if not sep or not where or not name:
        raise EntrypointError(f"entrypoint {entrypoint!r} is not of the form 'path/file.py:function'")
    return where, name


def _import_error(entrypoint: str, exc: BaseException) -> EntrypointError:
    frames = traceback.extract_tb(exc.__traceback__)
    # the innermost frame in the user's code says where it broke
    user = [f for f in frames if "importlib" not in f.filename and f.filename != __file__]
    where = f" ({Path(user[-1].filename).name}, line {user[-1].lineno})" if user else ""
    if isinstance(exc, SyntaxError) and exc.lineno is not None:
        where = f" ({Path(exc.filename or '?').name}, line {exc.lineno})"
    return EntrypointError(f"flow {entrypoint!r} could not be imported: {type(exc).__name__}: {exc}{where}")


def load_module(where: str, entrypoint: str, cwd: Path) -> Any:
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = (cwd / where).resolve()
        if not path.is_file():
            raise EntrypointError(f"entrypoint file {where!r} not found in {cwd}")
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        module_name = path.stem if path.stem not in sys.modules else f"__baton_flow_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise EntrypointError(f"entrypoint file {where!r} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(module_name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise _import_error(entrypoint, exc) from exc
        return module
    if str(cwd) not in sys.path:
        sys.path.insert(0, str(cwd))
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            raise EntrypointError(f"entrypoint module {where!r} not found") from exc
        raise _import_error(entrypoint, exc) from exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _import_error(entrypoint, exc) from exc


def load_flow(entrypoint: str | None, cwd: Path | None = None) -> FlowDefinition[..., Any]:
    """The flow an entrypoint names (a plain function is made one). Raises EntrypointError."""
    if not entrypoint:
        raise EntrypointError("the deployment has no entrypoint")
    where, name = _split(entrypoint)
    module = load_module(where, entrypoint, cwd or Path.cwd())
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise EntrypointError(f"{where!r} has no {name!r} (entrypoint {entrypoint!r})")
        target = getattr(target, part)
    if isinstance(target, FlowDefinition):
        return target
    if callable(target):
        return FlowDefinition(target)
    raise EntrypointError(f"{entrypoint!r} is not a flow (a {type(target).__name__})")
