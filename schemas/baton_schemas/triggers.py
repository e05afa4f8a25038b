"""Triggers: which events make an automation fire.

- An event trigger matches events by name (`expect`, `after`: exact names or `*` wildcards, as
  in matching.py) and by resource labels (`match`, `match_related`: a value or a list of values,
  each with wildcards). `for_each` names label keys: each distinct value counts apart.
  - Reactive: fires when `threshold` matching events arrive `within` a window (0: at once).
  - Proactive: fires when fewer than `threshold` `expect`ed events arrived `within` the window
    opened by an `after` event (or, with no `after`, by the previous window's end).
- A compound trigger fires when `require` ("any", "all" or a number) of its child triggers fired
  within its window; a sequence trigger when its children fired in order within its window.

A deployment's `triggers:` (baton.yaml) are event triggers with the parameters of the run they
start: each becomes an automation whose action runs that deployment.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from ._base import ClientModel
from .matching import compile_pattern

# A proactive window shorter than this is refused: the router judges a window a short while
# after it closes (the late-arrival allowance), and a window of a few seconds would be mostly
# allowance.
MIN_PROACTIVE_WITHIN_SECONDS = 5.0
MAX_WITHIN_SECONDS = 30 * 86400.0
MAX_CHILD_TRIGGERS = 20

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a text such as `30s`, `5m`, `1h30m`, `2d` (anything else is
    left for the float validator to refuse)."""
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        try:
            return float(text)
        except ValueError:
            pass
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(float(number) * _UNITS[unit] for number, unit in parts)
        raise ValueError(f"{value!r} is not a duration: give seconds or e.g. '30s', '5m', '1h30m', '2d'")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0, le=MAX_WITHIN_SECONDS)]
LabelMatch = dict[str, str | list[str]]


class Posture(StrEnum):
    REACTIVE = "Reactive"
    PROACTIVE = "Proactive"


class Require(StrEnum):
    ANY = "any"
    ALL = "all"


def _check_patterns(values: list[str]) -> list[str]:
    for value in values:
        compile_pattern(value)  # ValueError for an empty pattern
    return values


def _check_labels(labels: LabelMatch) -> LabelMatch:
    for key, value in labels.items():
        _check_patterns([value] if isinstance(value, str) else value)
        if not key:
            raise ValueError("a label key cannot be empty")
    return labels


class EventTrigger(ClientModel):
    type: Literal["event"] = "event"
    match: LabelMatch = Field(default_factory=dict, description="Resource labels the event must have.")
    match_related: LabelMatch = Field(
        default_factory=dict, description="Labels one of the event's related resources must have."
    )
    expect: list[str] = Field(default_factory=list, description="Event names counted (any if empty).")
    after: list[str] = Field(default_factory=list, description="Event names that open a window.")
    for_each: list[str] = Field(default_factory=list, description="Label keys counted apart.")
    posture: Posture = Posture.REACTIVE
    threshold: int = Field(default=1, ge=1, le=1_000_000)
    within: Duration = Field(default=0, description="The window, in seconds or as '10m', '1h'.")

    @field_validator("expect", "after")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)

    @field_validator("match", "match_related")
    @classmethod
    def _labels(cls, value: LabelMatch) -> LabelMatch:
        return _check_labels(value)

    @model_validator(mode="after")
    def _proactive_window(self) -> EventTrigger:
        if self.posture is Posture.PROACTIVE and self.within < MIN_PROACTIVE_WITHIN_SECONDS:
            raise ValueError(
                f"within: a proactive trigger's window must be at least "
                f"{MIN_PROACTIVE_WITHIN_SECONDS:g} seconds (got {self.within:g})"
            )
        return self


class CompoundTrigger(ClientModel):
    type: Literal["compound"] = "compound"
    require: Require | int = Field(default=Require.ALL, description="'any', 'all' or how many.")
    triggers: list[Trigger] = Field(min_length=1, max_length=MAX_CHILD_TRIGGERS)
    within: Duration = Field(default=0, description="All the children within this (0: no limit).")

    @model_validator(mode="after")
    def _require_fits(self) -> CompoundTrigger:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(f"require: between 1 and {len(self.triggers)} (the number of triggers)")
        return self

    def needed(self) -> int:
        if self.require == Require.ANY:
            return 1
        if self.require == Require.ALL:
            return len(self.triggers)
        assert isinstance(self.require, int)
        return self.require


class SequenceTrigger(ClientModel):
    type: Literal["sequence"] = "sequence"
    triggers: list[Trigger] = Field(min_length=1, max_length=MAX_CHILD_TRIGGERS)
    within: Duration = Field(default=0, description="The whole sequence within this (0: no limit).")


def _trigger_type(value: Any) -> str:
    """A trigger without `type` is an event trigger (as in baton.yaml)."""
    if isinstance(value, dict):
        return str(value.get("type", "event"))
    return str(getattr(value, "type", "event"))


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")],
    Discriminator(_trigger_type),
]
CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()


class DeploymentTrigger(EventTrigger):
    """A baton.yaml trigger: an event trigger that runs its deployment."""

    name: str | None = Field(default=None, max_length=100)
    enabled: bool = True
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Run parameters, templated from the event."
    )
    delay: Duration = Field(default=0, description="Schedule the run this long after the firing.")


__all__ = [
    "MIN_PROACTIVE_WITHIN_SECONDS",
    "CompoundTrigger",
    "DeploymentTrigger",
    "Duration",
    "EventTrigger",
    "Posture",
    "Require",
    "SequenceTrigger",
    "Trigger",
    "parse_duration",
]
