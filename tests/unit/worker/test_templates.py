"""Job templates rendered with job variables (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baton._worker._templates import (
    JobConfigurationError,
    ProcessJobConfiguration,
    render,
    render_job_configuration,
)
from baton_schemas.job_templates import default_process_template


def test_a_lone_placeholder_takes_the_value_whatever_its_type() -> None:
    values = {"env": {"A": "1"}, "flag": False, "n": 3, "nothing": None}
    assert render("{{ env }}", values) == {"A": "1"}
    assert render("{{flag}}", values) is False
    assert render("  {{ n }} ", values) == 3
    assert render("{{ nothing }}", values) is None


def test_a_placeholder_in_text_is_replaced_by_the_value_as_text() -> None:
    values = {"name": "etl", "n": 3, "on": True, "none": None}
    assert render("run-{{ name }}-{{ n }}-{{ on }}", values) == "run-etl-3-true"
    assert render("x{{ none }}y{{ missing }}z", values) == "xyz"


def test_nested_values_and_containers_are_rendered_and_missing_keys_dropped() -> None:
    template = {"a": "{{ obj.inner }}", "b": "{{ missing }}", "c": ["{{ n }}", "{{ missing }}", 1], "d": 2}
    assert render(template, {"obj": {"inner": "deep"}, "n": 5}) == {"a": "deep", "c": [5, 1], "d": 2}


def test_job_variables_override_the_schema_defaults() -> None:
    template = {
        "job_configuration": {"command": "{{ command }}", "labels": {"team": "{{ team }}"}},
        "variables": {
            "properties": {"command": {"default": "python -m x"}, "team": {"type": "string", "default": "a"}}
        },
    }
    assert render_job_configuration(template, {"team": "b"}) == {
        "command": "python -m x",
        "labels": {"team": "b"},
    }


@pytest.mark.parametrize("template", [{}, {"variables": {}}])
def test_an_empty_template_is_the_default_process_one(template: dict[str, Any]) -> None:
    config = ProcessJobConfiguration.from_template(template, {})
    assert config == ProcessJobConfiguration(command=None, env={}, working_dir=None, stream_output=True)


def test_the_default_process_template_maps_the_process_variables() -> None:
    config = ProcessJobConfiguration.from_template(
        default_process_template(),
        {"command": "nice -n 5 python -m baton._worker", "env": {"A": 1, "B": None}, "working_dir": "~/jobs"},
    )
    assert config.command == ["nice", "-n", "5", "python", "-m", "baton._worker"]
    assert config.env == {"A": "1"}  # values as text; None unsets nothing, it is skipped
    assert config.working_dir == Path("~/jobs").expanduser()
    assert config.stream_output is True


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("0", False), ("yes", True), (False, False)]
)
def test_stream_output_accepts_text(value: Any, expected: bool) -> None:
    config = ProcessJobConfiguration.from_configuration({"stream_output": value})
    assert config.stream_output is expected


def test_a_command_list_is_kept_as_argv() -> None:
    config = ProcessJobConfiguration.from_configuration({"command": ["python", "-m", "x", 3]})
    assert config.command == ["python", "-m", "x", "3"]


@pytest.mark.parametrize(("key", "value"), [("command", 3), ("env", ["A=1"])])
def test_a_variable_of_the_wrong_shape_is_refused_readably(key: str, value: Any) -> None:
    with pytest.raises(JobConfigurationError, match=f"job variable '{key}'"):
        ProcessJobConfiguration.from_configuration({key: value})
