"""Command-line values (`--param k=v`, `--params JSON`), entrypoints of flows, job templates,
and CLI error lines for API answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from baton import flow
from baton._deploy._errors import DeployError
from baton._deploy.entrypoint import entrypoint_of
from baton._deployments import split_name
from baton._transport import RequestRejected
from baton.cli._api import parse_object, parse_pairs, parse_value, rejection
from baton_schemas.job_templates import check_base_job_template, default_base_job_template


@flow(name="module-level")
def module_level(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Ford", "Ford"),
        ("3", 3),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ('"3"', "3"),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_parse_value(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_parse_pairs_and_object() -> None:
    assert parse_pairs(["name=Ford", "count=3", "expr=a=b"], "--param") == {
        "name": "Ford",
        "count": 3,
        "expr": "a=b",
    }
    assert parse_pairs(None, "--param") == {}
    with pytest.raises(typer.BadParameter, match="KEY=VALUE"):
        parse_pairs(["name"], "--param")
    assert parse_object('{"a": [1]}', "--params") == {"a": [1]}
    with pytest.raises(typer.BadParameter, match="JSON object"):
        parse_object("[1]", "--params")
    with pytest.raises(typer.BadParameter, match="not valid JSON"):
        parse_object("{", "--params")


def test_split_name() -> None:
    assert split_name("say-hello/prod") == ("say-hello", "prod")
    for bad in ("say-hello", "/prod", "a/", "a/b/c"):
        with pytest.raises(ValueError, match="flow-name/deployment-name"):
            split_name(bad)


def test_entrypoint_of_a_flow() -> None:
    here = Path(__file__).resolve()
    assert entrypoint_of(module_level, here.parent) == (f"{here.name}:module_level", here.parent)
    root = here.parents[3]
    assert entrypoint_of(module_level, root) == ("tests/unit/deploy/test_cli_parsing.py:module_level", root)

    @flow
    def local() -> None: ...

    with pytest.raises(DeployError, match="top level"):
        entrypoint_of(local)


def test_job_templates() -> None:
    template = default_base_job_template("process")
    assert template is not None and check_base_job_template(template) == []
    assert set(template["variables"]["properties"]) >= {"command", "env", "working_dir", "stream_output"}
    assert default_base_job_template("kubernetes") is None
    assert check_base_job_template([]) == ["the template must be a JSON object"]
    assert check_base_job_template({"job_configuration": {}, "variables": {}, "x": 1}) == [
        "unknown keys ['x']: use 'job_configuration' and 'variables'"
    ]


@pytest.mark.parametrize(
    ("status", "detail", "has_key", "expected"),
    [
        (401, "an API key is required", False, "set BATON_API_KEY"),
        (401, "unknown or revoked API key", True, "BATON_API_KEY is not a valid key"),
        (
            403,
            "this key has scope read; this needs write",
            True,
            "not allowed to do that: this key has scope read",
        ),
        (404, "work pool 'x' does not exist", True, "work pool 'x' does not exist"),
        (404, "Not Found", True, "ending in /api"),
        (422, "parameters.count: 'x' is not of type 'integer'", True, "parameters.count: 'x' is not"),
        (400, "odd", True, "(400: odd)"),
    ],
)
def test_rejections_read_as_sentences(status: int, detail: str, has_key: bool, expected: str) -> None:
    assert expected in rejection(RequestRejected(status, detail), has_key=has_key)
