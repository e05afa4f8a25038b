"""Schema models as a server would answer with them, for tests of the SDK's transports."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from baton_schemas.runs import FlowRun
from baton_schemas.states import Pending


def a_flow_run(run_id: UUID | None = None) -> FlowRun:
    """A Pending flow run of flow `etl`, as just created."""
    now = datetime.now(UTC)
    return FlowRun(
        id=run_id or uuid4(),
        name="quiet-otter",
        flow_id=uuid4(),
        flow_name="etl",
        state=Pending(),
        state_version=1,
        created=now,
        updated=now,
    )
