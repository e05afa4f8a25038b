"""Webhook templates render in Jinja2's sandbox, within a time and an output limit."""

from __future__ import annotations

import time

import orjson
import pytest

from baton_server.events.templates import RenderLimits, TemplateError, render, render_now

LIMITS = RenderLimits(seconds=0.5, output_chars=64 * 1024)
CONTEXT = {"body": {"repo": {"name": "baton"}, "commits": [1, 2, 3]}, "headers": {"x-event": "push"}}

GOOD = """{"event": "github.{{ headers['x-event'] }}",
 "resource": {"baton.resource.id": "github.repo.{{ body.repo.name | lower }}"},
 "payload": {"commits": {{ body.commits | length }}, "title": "{{ 'a,b'.split(',') | join('-') }}"}}"""


def test_string_methods_filters_and_lookups_work() -> None:
    rendered = orjson.loads(render_now(GOOD, CONTEXT, LIMITS))
    assert rendered["event"] == "github.push"
    assert rendered["resource"]["baton.resource.id"] == "github.repo.baton"
    assert rendered["payload"] == {"commits": 3, "title": "a-b"}


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ ''|attr('__class__') }}", "unsafe"),
        ("{{ lipsum.__globals__ }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os }}", "unsafe"),
        ("{{ range(10**9) | list }}", "Range too big"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "longer than"),
        ("{{ 'x' * 10**9 }}", "repetition longer"),
        ("{{ 2 ** 100000 }}", "exponent"),
        ("{{ 'x'|center(10**9) }}", "output limit"),
        ("{{ 'x'.ljust(10**9) }}", "output limit"),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(80) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "longer",
        ),
        ("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", "rendered more than"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{% if %}", "Expected an expression"),
    ],
)
async def test_escapes_and_bombs_are_blocked_within_the_time_limit(template: str, why: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError, match=why):
        await render(template, CONTEXT, LIMITS)
    # bounded: the loops alone would run for hours (generous, for a loaded machine)
    assert time.monotonic() - started < 10 * LIMITS.seconds
