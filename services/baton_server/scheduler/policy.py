"""What a schedule's runs obey: catch-up after an outage, overlap with a run still going, late_after.

A deployment stores its policy in `deployments.schedule_policy` with durations in seconds; a
schedule may carry a `policy` of its own, whose fields override the deployment's. Unset fields
take the documented defaults: catch-up `latest` within 1 h, overlap `allow`, Late after 15 s.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import orjson
from pydantic import TypeAdapter


class Catchup(StrEnum):
    ALL = "all"
    LATEST = "latest"
    NONE = "none"


class Overlap(StrEnum):
    ALLOW = "allow"
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    CANCEL_OTHER = "cancel_other"


DEFAULT_CATCHUP_WINDOW = timedelta(hours=1)
DEFAULT_LATE_AFTER = timedelta(seconds=15)

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)


@dataclass(frozen=True, slots=True)
class Policy:
    catchup: Catchup = Catchup.LATEST
    catchup_window: timedelta = DEFAULT_CATCHUP_WINDOW
    overlap: Overlap = Overlap.ALLOW
    late_after: timedelta = DEFAULT_LATE_AFTER


def _seconds(value: Any) -> timedelta:
    return _DURATION.validate_python(value)


def resolve_policy(deployment_policy: Mapping[str, Any] | None, schedule: Mapping[str, Any] | None) -> Policy:
    """The policy of one schedule: its own fields over its deployment's over the defaults."""
    fields: dict[str, Any] = {**(deployment_policy or {})}
    own = (schedule or {}).get("policy") or {}
    fields.update({k: v for k, v in own.items() if v is not None})
    policy = Policy()
    return Policy(
        catchup=Catchup(fields["catchup"]) if fields.get("catchup") else policy.catchup,
        catchup_window=_seconds(fields["catchup_window"])
        if fields.get("catchup_window") is not None
        else policy.catchup_window,
        overlap=Overlap(fields["overlap"]) if fields.get("overlap") else policy.overlap,
        late_after=_seconds(fields["late_after"])
        if fields.get("late_after") is not None
        else policy.late_after,
    )


def stored_policy(policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """A deployment's policy as `deployments.schedule_policy` keeps it: durations in seconds,
    unset fields left out (SQL reads `late_after` from it)."""
    stored: dict[str, Any] = {}
    for key, value in (policy or {}).items():
        if value is None:
            continue
        if key in ("catchup_window", "late_after"):
            stored[key] = _seconds(value).total_seconds()
        else:
            stored[key] = str(getattr(value, "value", value))
    return stored


def schedule_id(deployment_id: uuid.UUID, index: int, entry: Mapping[str, Any]) -> str:
    """A schedule's id: its own, or for one stored without an id, one derived from its place."""
    own = entry.get("id")
    if own:
        return str(own)
    return str(uuid.uuid5(deployment_id, f"schedule-{index}"))


def fingerprint(entry: Mapping[str, Any], deployment: Mapping[str, Any]) -> str:
    """What a schedule's runs are made from: when any of it changes, its unstarted runs are
    deleted and made again."""
    made_from = {
        "schedule": entry,
        "parameters": deployment["parameters"],
        "tags": list(deployment["tags"]),
        "pool": deployment["work_pool_name"],
        "queue": deployment["work_queue_name"],
        "retries": deployment["retries"],
        "retry_delay_seconds": deployment["retry_delay_seconds"],
    }
    return hashlib.sha256(orjson.dumps(made_from, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:32]
