"""Base models: one deliberate `extra` policy per direction of travel."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


def slugify(name: str) -> str:
    """Lower-case, dash-separated form of a name, safe as an AMQP routing-key word."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "unnamed"


class BatonModel(BaseModel):
    """What Baton reads: unknown fields from newer writers are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


class ClientModel(BatonModel):
    """What clients send to Baton: a misspelt field is an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Envelope(BatonModel):
    """A message that crosses the broker. `schema_version` lets readers refuse what they can't read."""

    schema_version: int = SCHEMA_VERSION


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
