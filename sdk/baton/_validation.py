"""Flow parameters: bind the call to the signature and validate each argument with pydantic."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from ._exceptions import ParameterValidationError


def _adapter(annotation: Any) -> Any:
    from pydantic import ConfigDict, PydanticSchemaGenerationError, TypeAdapter

    if annotation is inspect.Parameter.empty or annotation is Any or isinstance(annotation, str):
        return None  # absent, anything, or a forward reference that could not be resolved
    try:
        return TypeAdapter(annotation)
    except PydanticSchemaGenerationError:
        try:
            return TypeAdapter(annotation, config=ConfigDict(arbitrary_types_allowed=True))
        except Exception:
            return None
    except Exception:  # an annotation pydantic can't use: leave the argument unvalidated
        return None


class ParameterValidator:
    """Made once per flow; `bind()` turns a call into validated, coerced arguments."""

    def __init__(self, fn: Callable[..., Any], flow_name: str, validate: bool) -> None:
        self.signature = inspect.signature(fn)
        self.flow_name = flow_name
        self.validate = validate
        self._adapters: dict[str, Any] | None = None
        self._fn = fn

    def _load_adapters(self) -> dict[str, Any]:
        try:
            hints = typing.get_type_hints(self._fn, include_extras=True)
        except Exception:
            hints = {}
        adapters = {}
        for name, param in self.signature.parameters.items():
            adapter = _adapter(hints.get(name, param.annotation))
            if adapter is not None and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                adapters[name] = adapter
        return adapters

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        """Bind and validate; raises `ParameterValidationError` naming the bad fields."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterValidationError(self.flow_name, [self._binding_error(exc, kwargs)]) from None
        if self.validate:
            from pydantic import ValidationError

            if self._adapters is None:
                self._adapters = self._load_adapters()
            errors: list[dict[str, Any]] = []
            for name, value in bound.arguments.items():
                adapter = self._adapters.get(name)
                if adapter is None:
                    continue
                try:
                    bound.arguments[name] = adapter.validate_python(value)
                except ValidationError as exc:
                    for error in exc.errors(include_url=False):
                        errors.append({**error, "loc": (name, *error.get("loc", ()))})
            if errors:
                raise ParameterValidationError(self.flow_name, errors)
        bound.apply_defaults()
        return bound

    def _binding_error(self, exc: TypeError, kwargs: dict[str, Any]) -> dict[str, Any]:
        message = str(exc)
        params = self.signature.parameters
        for name in params:
            if f"'{name}'" in message:
                return {"loc": (name,), "msg": message, "type": "binding"}
        for name in kwargs:
            if name not in params:
                return {"loc": (name,), "msg": message, "type": "binding"}
        return {"loc": (), "msg": message, "type": "binding"}
