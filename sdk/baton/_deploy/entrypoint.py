"""Entrypoints (`path/file.py:function`): load the Flow one names, or name the one a Flow came from."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

from .. import _entrypoints
from .._definitions import FlowDefinition
from ._errors import DeployError


def load_flow(entrypoint: str, base_dir: Path | str | None = None) -> FlowDefinition[..., Any]:
    """The flow an entrypoint names, loaded as a worker will load it (relative to `base_dir`,
    the working directory by default); a DeployError says why it can't be."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        return _entrypoints.load_flow(entrypoint, base.resolve())
    except _entrypoints.EntrypointError as exc:
        raise DeployError(str(exc)) from exc


def entrypoint_of(flow: FlowDefinition[..., Any], base_dir: Path | None = None) -> tuple[str, Path]:
    """The entrypoint of a flow defined at a module's top level, relative to `base_dir` (the
    working directory when it contains the file, else the file's folder), and that folder."""
    fn = flow.fn
    source = inspect.getsourcefile(fn)
    qualname = getattr(fn, "__qualname__", "")
    if source is None or "<" in qualname:
        raise DeployError(f"flow {flow.name!r} is not defined at the top level of a file")
    path = Path(source).resolve()
    base = (base_dir or Path.cwd()).resolve()
    if not path.is_relative_to(base):
        base = path.parent
    # The name the module knows the Flow by (usually the function's own).
    name = fn.__name__
    module = sys.modules.get(fn.__module__)
    if module is not None and getattr(module, name, None) is not flow:
        for attr, value in vars(module).items():
            if value is flow:
                name = attr
                break
    return f"{path.relative_to(base).as_posix()}:{name}", base
