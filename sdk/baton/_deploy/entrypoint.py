"""Entrypoints (`path/file.py:function`): load the Flow one names, or name the one a Flow came from."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import DeployError

if TYPE_CHECKING:
    from .._flows import Flow


def load_flow(entrypoint: str, base_dir: Path | str | None = None) -> Flow[..., Any]:
    """The Flow an entrypoint names, loaded as a worker will load it (relative to `base_dir`,
    the working directory by default); a DeployError says why it can't be."""
    from .._worker._entrypoint import EntrypointError
    from .._worker._entrypoint import load_flow as worker_load_flow

    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        return worker_load_flow(entrypoint, base.resolve())
    except EntrypointError as exc:
        raise DeployError(str(exc)) from exc


def entrypoint_of(flow: Flow[..., Any], base_dir: Path | None = None) -> tuple[str, Path]:
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
