"""Global concurrency limits and rate limits: named slots that any code may occupy.

A limit has `limit` slots. `concurrency("db", occupy=2)` holds two of them under a lease that
its holder renews while it runs; a holder that dies stops renewing and its slots come back when
the lease expires. A limit with `slot_decay_per_second` is also a rate limit: `rate_limit(name)`
takes slots that are never released but drain away at that rate.

A limit named `tag:{tag}` caps the task runs carrying that tag, across every flow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field

from ._base import BatonModel, ClientModel
from .limits import Name

TAG_PREFIX = "tag:"
MAX_WAIT_SECONDS = 30.0  # the longest the server holds one acquire request
MAX_LEASE_SECONDS = 3600.0


def tag_limit_name(tag: str) -> str:
    """The name of the limit that caps the task runs carrying `tag`."""
    return f"{TAG_PREFIX}{tag}"


class ConcurrencyLimitCreate(ClientModel):
    name: Name
    limit: int = Field(ge=0, description="How many slots may be held at once.")
    slot_decay_per_second: float = Field(
        default=0.0,
        ge=0,
        description="Slots taken by rate_limit() drain away at this rate; 0: not a rate limit.",
    )
    active: bool = Field(default=True, description="An inactive limit lets everything through.")


class ConcurrencyLimitUpdate(ClientModel):
    limit: int | None = Field(default=None, ge=0)
    slot_decay_per_second: float | None = Field(default=None, ge=0)
    active: bool | None = None


class ConcurrencyHolder(BatonModel):
    """Who holds a lease: a task run, a flow run, or plain code in some process."""

    type: Literal["task_run", "flow_run", "process"] = "process"
    id: str | None = Field(default=None, max_length=200)


class ConcurrencyLease(BatonModel):
    id: UUID
    slots: int
    expires: datetime
    holder: ConcurrencyHolder | None = None
    created: datetime


class ConcurrencyLimit(BatonModel):
    id: UUID
    name: str
    limit: int
    active: bool
    slot_decay_per_second: float
    active_slots: int = Field(description="Held by live leases, plus rate-limit slots not yet drained.")
    held_slots: int = Field(description="Held by live leases.")
    denied_slots: int = Field(description="Slots asked for and not granted at once, since created.")
    created: datetime
    updated: datetime
    leases: list[ConcurrencyLease] | None = Field(default=None, description="On inspect only.")


class AcquireSlots(ClientModel):
    names: list[Name] = Field(min_length=1, max_length=100)
    slots: int = Field(default=1, ge=1)
    mode: Literal["concurrency", "rate_limit"] = "concurrency"
    lease_seconds: float = Field(default=60.0, gt=0, le=MAX_LEASE_SECONDS)
    wait_seconds: float = Field(
        default=0.0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="How long the server may hold the request for slots to come free.",
    )
    strict: bool = Field(default=False, description="A name with no limit is an error (404), not a pass.")
    holder: ConcurrencyHolder | None = None


class SlotsAcquired(BatonModel):
    """Granted. `lease_id` is None when nothing is held: rate limits, or no limit applied."""

    lease_id: UUID | None = None
    limits: list[str] = Field(default_factory=list, description="The active limits the slots were taken of.")
    missing: list[str] = Field(default_factory=list, description="Names asked for that have no limit.")
    expires: datetime | None = None


class SlotsUnavailable(BatonModel):
    """Not granted within the wait (HTTP 423): ask again."""

    detail: str
    retry_after_seconds: float
    limits: list[str] = Field(default_factory=list, description="The limits that are full.")


class RenewLease(ClientModel):
    lease_seconds: float = Field(default=60.0, gt=0, le=MAX_LEASE_SECONDS)
