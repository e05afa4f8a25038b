"""The JSON Schema of a flow's parameters, from its signature, as stored with a deployment.

The server validates each run's parameters against it, so a bad one is refused when the run
is created rather than when a worker starts it.
"""

from __future__ import annotations

import inspect
import typing
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import to_jsonable_python

from ._errors import DeployError

_SKIPPED_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _usable(annotation: Any) -> Any:
    """The annotation if pydantic can validate it and describe it in JSON Schema, else Any."""
    if annotation is inspect.Parameter.empty or isinstance(annotation, str):
        return Any
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TypeAdapter(annotation).json_schema()
    except Exception:
        return Any
    return annotation


def _jsonable(value: Any) -> bool:
    try:
        to_jsonable_python(value)
    except Exception:
        return False
    return True


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an unresolvable forward reference: resolve the others one by one
        pass
    hints = {}
    namespace = getattr(fn, "__globals__", {})
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # what get_type_hints does, per name
            except Exception:
                continue
        hints[name] = annotation
    return hints


def parameters_model(fn: Callable[..., Any]) -> type[Any]:
    """A pydantic model with one field per parameter (by alias: names like `_x` or `json` are fine)."""
    hints = _hints(fn)
    fields: dict[str, Any] = {}
    for position, (name, param) in enumerate(inspect.signature(fn).parameters.items()):
        if param.kind in _SKIPPED_KINDS:
            continue
        annotation = _usable(hints.get(name, param.annotation))
        extra: dict[str, Any] = {"position": position}
        if param.default is inspect.Parameter.empty:
            info = Field(alias=name, title=name, json_schema_extra=extra)
        elif _jsonable(param.default):
            info = Field(default=param.default, alias=name, title=name, json_schema_extra=extra)
        else:  # optional, but its default has no JSON form to show
            default = param.default
            info = Field(default_factory=lambda d=default: d, alias=name, title=name, json_schema_extra=extra)
        fields[f"p{position}"] = (annotation, info)
    config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=False, extra="forbid")
    model: type[Any] = create_model("Parameters", __config__=config, **fields)
    return model


def parameter_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    """`{"title": "Parameters", "type": "object", "properties": {...}, "required": [...],
    "additionalProperties": false}`; each property also carries its `position`."""
    model = parameters_model(fn)
    schema: dict[str, Any] = model.model_json_schema(by_alias=True)
    # An unknown parameter is refused when the run is created, unless the flow takes **kwargs.
    schema["additionalProperties"] = _takes_var_keyword(fn)
    return schema


def _takes_var_keyword(fn: Callable[..., Any]) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def check_parameters(fn: Callable[..., Any], parameters: Mapping[str, Any], where: str) -> None:
    """Raise a DeployError naming each deployment default that doesn't fit the signature.
    Missing required parameters are fine here: a run may supply them."""
    model = parameters_model(fn)
    aliases = {info.alias: name for name, info in model.model_fields.items()}
    problems = []
    unknown = [key for key in parameters if key not in aliases]
    if unknown and not _takes_var_keyword(fn):
        problems.append(f"{', '.join(map(repr, unknown))}: not a parameter of the flow")
    known = {key: value for key, value in parameters.items() if key in aliases}
    try:
        model.model_validate(known)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = error.get("loc", ())
            if error.get("type") == "missing":
                continue
            problems.append(f"{'.'.join(str(p) for p in loc)}: {error.get('msg')}")
    if problems:
        raise DeployError(f"{where}: parameters: {'; '.join(problems)}")
