"""Webhook templates: Jinja2 in its sandbox, bounded in time and in output size.

The sandbox (`jinja2.sandbox.SandboxedEnvironment`) refuses private and dunder attributes
(`''.__class__`), unsafe callables and `range`s over 100,000 items; string methods and filters
work. On top of it every attribute lookup, call, item lookup, `*`, `**` and output chunk checks
the render's deadline, and `*` / `**` refuse results past the output limit, so a loop of
loops, a huge repetition or a giant power fails fast with a clear message rather than holding
a thread. A render runs on a worker thread; its caller also stops waiting at the deadline.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError as JinjaError
from jinja2 import Undefined
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT_CHARS = 256 * 1024
_MAX_EXPONENT = 1000
_state = threading.local()


class TemplateError(ValueError):
    """The template cannot be compiled or rendered; the message says why."""


@dataclass(frozen=True, slots=True)
class RenderLimits:
    seconds: float = 1.0
    output_chars: int = MAX_OUTPUT_CHARS


def _check_deadline() -> None:
    deadline = getattr(_state, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise TemplateError(f"rendering took longer than {_state.seconds:g}s")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _limit() -> int:
    return getattr(_state, "output_chars", MAX_OUTPUT_CHARS)  # type: ignore[no-any-return]


def _bounded(value: Any) -> Any:
    """A value read in a template, unless it is far larger than any output may be (a string
    doubled in a loop, say)."""
    if _size(value) > 2 * _limit():
        raise TemplateError(f"a value longer than {2 * _limit()} characters is not allowed")
    return value


def _guarded(function: Any) -> Any:
    """A filter or global that checks the deadline and refuses widths past the output limit
    (`'x'|center(10**9)` would build a gigabyte)."""

    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        for value in (*args[1:], *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and value > _limit():
                raise TemplateError(f"a size of {value} is more than the output limit ({_limit()})")
        return _bounded(function(*args, **kwargs))

    for attribute in ("jinja_pass_arg", "__name__", "__doc__"):
        if hasattr(function, attribute):
            setattr(guarded, attribute, getattr(function, attribute))
    return guarded


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _guarded(f) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _check_deadline()
        limit = _limit()
        if operator == "+":
            if _size(left) + _size(right) > 2 * limit:
                raise TemplateError(f"a value longer than {2 * limit} characters is not allowed")
            return left + right
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise TemplateError(f"an exponent above {_MAX_EXPONENT} is not allowed")
            return left**right
        count = right if isinstance(right, int) else left if isinstance(left, int) else 1
        if isinstance(count, int) and (_size(left) + _size(right)) * max(count, 0) > limit:
            raise TemplateError(f"a repetition longer than {limit} characters is not allowed")
        return left * right

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        """An unsafe attribute (`|attr('__class__')` too) is an error, not a silent blank."""
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} is unsafe")

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_deadline()
        if isinstance(getattr(__obj, "__self__", None), str | bytes | list):
            for value in (*args, *kwargs.values()):  # 'x'.ljust(10**9) and the like
                if isinstance(value, int) and not isinstance(value, bool) and value > _limit():
                    raise TemplateError(f"a size of {value} is more than the output limit ({_limit()})")
        return _bounded(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _check_deadline()
        return _bounded(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _check_deadline()
        return _bounded(super().getitem(obj, argument))


_ENVIRONMENT = _Sandbox(autoescape=False, undefined=Undefined)


def compile_template(text: str) -> Any:
    """A compiled template, or TemplateError with Jinja's message (and line)."""
    try:
        return _ENVIRONMENT.from_string(text)
    except JinjaError as exc:
        line = getattr(exc, "lineno", None)
        raise TemplateError(f"{exc}" + (f" (line {line})" if line else "")) from None


def render_now(text: str, context: Mapping[str, Any], limits: RenderLimits) -> str:
    """Render on this thread, within the limits."""
    template = compile_template(text)
    _state.deadline = time.monotonic() + limits.seconds
    _state.seconds = limits.seconds
    _state.output_chars = limits.output_chars
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > limits.output_chars:
                raise TemplateError(f"the template rendered more than {limits.output_chars} characters")
            parts.append(chunk)
            _check_deadline()
        return "".join(parts)
    except TemplateError:
        raise
    except SecurityError as exc:
        raise TemplateError(f"not allowed in a template: {exc}") from None
    except OverflowError as exc:  # the sandbox's range limit
        raise TemplateError(f"not allowed in a template: {exc}") from None
    except JinjaError as exc:
        raise TemplateError(str(exc)) from None
    except (RecursionError, MemoryError):
        raise TemplateError("the template is too deeply nested or too large to render") from None
    except Exception as exc:  # the template's own mistake: 1/0, a bad method call...
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    finally:
        _state.deadline = None


async def render(text: str, context: Mapping[str, Any], limits: RenderLimits) -> str:
    """Render on a worker thread; TemplateError past the deadline, whatever the thread does."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(render_now, text, context, limits), limits.seconds + 0.25
        )
    except TimeoutError:
        raise TemplateError(f"rendering took longer than {limits.seconds:g}s") from None
