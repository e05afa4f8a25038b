"""The parameter schema of a flow, from its signature; deployment defaults checked against it."""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from baton import flow
from baton._deploy._errors import DeployError
from baton._deploy.schema import check_parameters, parameter_schema
from jsonschema import Draft202012Validator


class Window(BaseModel):
    days: int = 1


def typed(  # type: ignore[no-untyped-def]  # `anything` is left untyped on purpose
    name: str,
    count: int = 2,
    ratio: float = 0.5,
    loud: bool = False,
    tags: list[str] | None = None,
    when: datetime.date | None = None,
    window: Window = Window(),
    mode: Literal["fast", "slow"] = "fast",
    positive: Annotated[int, Field(ge=1)] = 1,
    _private: str = "x",
    json: dict[str, int] | None = None,
    anything=3,
    thing: object = object(),
    *args: Any,
) -> None: ...


def test_types_defaults_and_required() -> None:
    schema = parameter_schema(typed)
    assert (schema["title"], schema["type"], schema["required"]) == ("Parameters", "object", ["name"])
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert list(props) == [
        "name", "count", "ratio", "loud", "tags", "when", "window", "mode", "positive", "_private", "json",
        "anything", "thing",
    ]  # fmt: skip
    assert props["name"] == {"title": "name", "type": "string", "position": 0}
    assert (props["count"]["type"], props["count"]["default"]) == ("integer", 2)
    assert (props["ratio"]["type"], props["loud"]["type"]) == ("number", "boolean")
    assert props["tags"]["anyOf"] == [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    assert {"type": "string", "format": "date"} in props["when"]["anyOf"]
    assert props["window"]["$ref"] == "#/$defs/Window" and props["window"]["default"] == {"days": 1}
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["positive"]["minimum"] == 1
    assert props["_private"]["default"] == "x" and props["json"]["default"] is None
    assert props["anything"] == {"title": "anything", "default": 3, "position": 11}  # untyped: any value
    assert props["thing"] == {"title": "thing", "position": 12}  # no JSON default to show, not required


def test_schema_validates_what_the_flow_accepts() -> None:
    validator = Draft202012Validator(parameter_schema(typed))
    assert validator.is_valid({"name": "a", "count": 3, "window": {"days": 2}, "when": "2024-01-02"})
    assert not validator.is_valid({"count": 3})  # name is required
    assert not validator.is_valid({"name": "a", "count": "x"})
    assert not validator.is_valid({"name": "a", "mode": "medium"})
    assert not validator.is_valid({"name": "a", "positive": 0})
    assert not validator.is_valid({"name": "a", "colour": "red"})  # not a parameter


def test_var_keyword_allows_more_and_flows_work_too() -> None:
    @flow
    def open_ended(a: int, **rest: Any) -> None: ...

    schema = parameter_schema(open_ended.fn)
    assert schema["additionalProperties"] is True and schema["required"] == ["a"]
    assert Draft202012Validator(schema).is_valid({"a": 1, "b": 2})


def test_unresolvable_annotation_is_any() -> None:
    def fn(x: "NotDefinedAnywhere", y: int = 1) -> None: ...  # type: ignore[name-defined]  # noqa: F821, UP037

    props = parameter_schema(fn)["properties"]
    assert props["x"] == {"title": "x", "position": 0}
    assert props["y"]["type"] == "integer"


def test_check_parameters() -> None:
    check_parameters(typed, {"count": "3", "window": {"days": 4}}, "here")  # coercible; name may come later
    with pytest.raises(DeployError) as caught:
        check_parameters(typed, {"count": "many", "nope": 1}, "deployments[0] (x)")
    assert str(caught.value) == (
        "deployments[0] (x): parameters: 'nope': not a parameter of the flow; "
        "count: Input should be a valid integer, unable to parse string as an integer"
    )
