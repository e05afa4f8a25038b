"""Action templates: values rendered by the sandboxed Jinja2 of events/templates.py.

A string that is one expression alone (`"{{ event.payload.total }}"`) keeps the expression's
type: it is rendered through `tojson` and parsed back, so a number stays a number and a list a
list. Any other string renders to a string. Dicts and lists are rendered value by value; other
values are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from ..events.templates import RenderLimits, TemplateError, compile_template, render

_ONE_EXPRESSION = re.compile(r"\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*", re.DOTALL)


def _has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def one_expression(text: str) -> str | None:
    match = _ONE_EXPRESSION.fullmatch(text)
    return match.group("expr") if match else None


async def render_value(value: Any, context: Mapping[str, Any], limits: RenderLimits) -> Any:
    if isinstance(value, str):
        if not _has_template(value):
            return value
        expression = one_expression(value)
        if expression is None:
            return await render(value, context, limits)
        text = await render("{{ (" + expression + ") | tojson }}", context, limits)
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:  # an Undefined renders to nothing
            raise TemplateError(f"{value.strip()!r} rendered no value ({exc})") from None
    if isinstance(value, dict):
        return {k: await render_value(v, context, limits) for k, v in value.items()}
    if isinstance(value, list):
        return [await render_value(v, context, limits) for v in value]
    return value


def _strings(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))


def template_errors(value: Any, loc: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """One error (FastAPI's shape) per string of `value` that does not compile."""
    errors = []
    for where, text in _strings(value, loc):
        if not _has_template(text):
            continue
        try:
            compile_template(text)
            expression = one_expression(text)
            if expression is not None:
                compile_template("{{ (" + expression + ") | tojson }}")
        except TemplateError as exc:
            errors.append(
                {"loc": list(where), "msg": f"the template does not compile: {exc}", "type": "template"}
            )
    return errors
