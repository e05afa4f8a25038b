"""Action templates: one expression keeps its type, text makes a string, the sandbox holds."""

from __future__ import annotations

import pytest

from baton_server.events.templates import RenderLimits, TemplateError
from baton_server.router.templating import render_value, template_errors

EVENT = {
    "event": {"payload": {"total": 18.5, "lines": [1, 2]}, "resource": {"baton.resource.id": "shop.order.42"}}
}


async def test_native_types_and_strings() -> None:
    rendered = await render_value(
        {
            "total": "{{ event.payload.total }}",
            "lines": "{{ event.payload.lines }}",
            "id": "{{ event.resource['baton.resource.id'].split('.')[-1] }}",
            "text": "order {{ event.payload.total }}",
            "fixed": 3,
        },
        EVENT,
        RenderLimits(),
    )
    assert rendered == {"total": 18.5, "lines": [1, 2], "id": "42", "text": "order 18.5", "fixed": 3}


async def test_the_sandbox_blocks_an_escape() -> None:
    with pytest.raises(TemplateError):
        await render_value("{{ ''.__class__.__mro__[1].__subclasses__() }}", EVENT, RenderLimits())


def test_syntax_errors_name_the_field() -> None:
    [error] = template_errors({"a": "ok", "b": "{{ broken"}, ("body", "actions", 0, "parameters"))
    assert error["loc"] == ["body", "actions", 0, "parameters", "b"]
