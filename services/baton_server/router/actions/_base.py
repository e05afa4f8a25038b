"""What every action gets (the firing, its templates' context, a connection inside the firing's
transaction) and gives back (its outcome, the outbox rows to send after commit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from baton_schemas.automations import ActionOutcome

from ...broker.outbox import OutboxRow
from ...events.templates import RenderLimits
from ..compiled import CompiledAutomation
from ..windows import Fire


class ActionFailed(Exception):
    """The action cannot be done (its target is gone, its parameters are invalid): the firing
    records why, and the router carries on."""


@dataclass(frozen=True, slots=True)
class ActionContext:
    automation: CompiledAutomation
    fire: Fire
    firing_id: Any
    context: dict[str, Any]  # what templates see
    now: datetime
    limits: RenderLimits
    dispatch_within: float
    default_lease_seconds: float
    # deployments the batch's run-deployment actions looked up, by reference (read once per batch)
    deployments: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.fire.key

    def idempotency_key(self, index: int) -> str:
        """A run made by this firing's `index`-th action: `trigger:{automation}:{firing key}:{index}`."""
        return f"trigger:{self.automation.id}:{self.fire.key}:{index}"

    def related(self, kind: str) -> str | None:
        """The id in the firing event's resource or related resources named `baton.{kind}.{id}`."""
        event = self.fire.event
        if event is None:
            return None
        prefix = f"baton.{kind}."
        for resource in (event["resource"], *event.get("related", ())):
            value = resource.get("baton.resource.id", "")
            if value.startswith(prefix):
                return str(value[len(prefix) :])
        return None


@dataclass(slots=True)
class Done:
    outcome: ActionOutcome
    outbox: list[OutboxRow] = field(default_factory=list)
    call: dict[str, Any] | None = None  # a webhook request to make after commit
