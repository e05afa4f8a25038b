"""Triggers: which events start a deployment, stored with it until the event router acts on them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from ._base import ClientModel


class Posture(StrEnum):
    REACTIVE = "Reactive"
    PROACTIVE = "Proactive"


class EventTrigger(ClientModel):
    name: str | None = None
    enabled: bool = True
    match: dict[str, str | list[str]] = Field(default_factory=dict)
    match_related: dict[str, str | list[str]] = Field(default_factory=dict)
    expect: list[str] = Field(default_factory=list)
    after: list[str] = Field(default_factory=list)
    for_each: list[str] = Field(default_factory=list)
    posture: Posture = Posture.REACTIVE
    threshold: int = Field(default=1, ge=1)
    within_seconds: float = Field(default=0, ge=0)
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Run parameters, templated from the event."
    )
