"""An automation as the router holds it: its trigger tree parsed, its leaves compiled, its
actions typed. Made once per revision, when the index takes it in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter

from baton_schemas.automations import Action, Automation
from baton_schemas.triggers import CompoundTrigger, EventTrigger, SequenceTrigger, Trigger

from .index import Leaf, leaves_of

_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)
_ACTIONS: TypeAdapter[list[Action]] = TypeAdapter(list[Action])


@dataclass(frozen=True, slots=True)
class CompiledAutomation:
    id: UUID
    name: str
    enabled: bool
    revision: int
    trigger: Trigger
    leaves: tuple[Leaf, ...]
    actions: tuple[Action, ...]
    actions_on_trigger: tuple[Action, ...]
    actions_on_resolve: tuple[Action, ...]

    @classmethod
    def of(cls, automation: Automation) -> CompiledAutomation:
        trigger = _TRIGGER.validate_python(automation.trigger)
        return cls(
            automation.id,
            automation.name,
            automation.enabled,
            automation.revision,
            trigger,
            tuple(leaves_of(automation.id, trigger)),
            tuple(_ACTIONS.validate_python(automation.actions)),
            tuple(_ACTIONS.validate_python(automation.actions_on_trigger)),
            tuple(_ACTIONS.validate_python(automation.actions_on_resolve)),
        )

    def at(self, path: str) -> Trigger:
        """The trigger at `path` ("" the root, "1.0" the first child of the second)."""
        trigger: Any = self.trigger
        for part in path.split(".") if path else ():
            trigger = trigger.triggers[int(part)]
        return trigger  # type: ignore[no-any-return]

    def event_trigger(self, path: str) -> EventTrigger:
        found = self.at(path)
        assert isinstance(found, EventTrigger)
        return found

    def composite(self, path: str) -> CompoundTrigger | SequenceTrigger:
        found = self.at(path)
        assert isinstance(found, CompoundTrigger | SequenceTrigger)
        return found


def parent_of(path: str) -> tuple[str, int] | None:
    """The parent's path and this child's index in it; None for the root."""
    if not path:
        return None
    parent, _, index = path.rpartition(".")
    return parent, int(index)
