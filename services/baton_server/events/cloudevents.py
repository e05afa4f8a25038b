"""CloudEvents 1.0 in, Baton events out: over HTTP and over AMQP, structured and binary modes.

Parsing is the `cloudevents` package's (its HTTP binding, and its AMQP binding with the
`cloudEvents:` / `cloudEvents_` application properties, which AMQP 0-9-1 carries as headers);
this module maps the result onto Baton's model, the same way for every transport:

| CloudEvent              | Baton event                                                       |
|-------------------------|-------------------------------------------------------------------|
| `type`                  | `event` (the name)                                                |
| `source`, `subject`     | resource labels `cloudevents.source`, `cloudevents.subject`;      |
|                         | `baton.resource.id` is `{source}/{subject}`, or `source` alone    |
| `batonresourceid` (ext) | `baton.resource.id`, when a sender wants to choose it             |
| `id`                    | `id` when it is a UUID, else a UUIDv5 of (source, id), so a       |
|                         | redelivered CloudEvent is still stored once; the original in the  |
|                         | resource label `cloudevents.id`                                   |
| `time`                  | `occurred` (the time it arrived, if absent)                       |
| `data`                  | `payload` when a JSON object; else `{"data": value}`, or          |
|                         | `{"data_base64": ...}` for binary data                            |
| `dataschema`, other     | resource labels `cloudevents.{name}`, as text                     |
| extensions              |                                                                   |
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings import amqp, http
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import ValidationError

from baton_schemas.events import RESOURCE_ID, Event

# the namespace of the ids made for CloudEvents whose id is not a UUID
CLOUDEVENTS_NAMESPACE = uuid.UUID("6f0d1c1e-7a53-4b8f-9a7e-0c6b0ba70001")
RESOURCE_ID_EXTENSION = "batonresourceid"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_FORMAT = JSONFormat()
_CORE = frozenset({"specversion", "type", "source", "id", "time", "subject", "datacontenttype"})
_AMQP_PREFIXES = (amqp.CE_PREFIX_COLON, amqp.CE_PREFIX_UNDERSCORE)


class NotACloudEvent(ValueError):
    """It says it is a CloudEvent (or a batch of them) and is not a valid one."""


def event_id(source: str, ce_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(ce_id)
    except ValueError:
        return uuid.uuid5(CLOUDEVENTS_NAMESPACE, f"{source}\n{ce_id}")


def _payload(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, dict):
        return data
    if isinstance(data, bytes | bytearray):
        return {"data_base64": base64.b64encode(data).decode()}
    return {"data": data}


def to_baton(cloud_event: BaseCloudEvent, *, timed: bool = True) -> Event:
    """The Baton event of a parsed CloudEvent (pydantic's ValidationError if it makes none).
    `timed`: the CloudEvent had a `time` (the parser fills in now when it has none; such an
    event is left without `occurred`, which the store then stamps)."""
    attributes = cloud_event.get_attributes()
    source, ce_id = str(attributes["source"]), str(attributes["id"])
    subject = attributes.get("subject")
    resource: dict[str, str] = {"cloudevents.source": source, "cloudevents.id": ce_id}
    if subject:
        resource["cloudevents.subject"] = str(subject)
    for name, value in attributes.items():
        if name not in _CORE and name != RESOURCE_ID_EXTENSION and value is not None:
            resource[f"cloudevents.{name}"] = value.isoformat() if isinstance(value, datetime) else str(value)
    chosen = attributes.get(RESOURCE_ID_EXTENSION)
    resource[RESOURCE_ID] = (
        str(chosen) if chosen else (f"{source.rstrip('/')}/{subject}" if subject else source)
    )
    fields: dict[str, Any] = {
        "id": event_id(source, ce_id),
        "event": attributes["type"],
        "resource": resource,
        "payload": _payload(cloud_event.get_data()),
    }
    if timed and attributes.get("time") is not None:
        fields["occurred"] = attributes["time"]
    return Event.model_validate(fields)


def _parsed(parse: Any, *args: Any) -> BaseCloudEvent:
    try:
        event: BaseCloudEvent = parse(*args)
    except (BaseCloudEventException, ValueError, TypeError, KeyError) as exc:
        # ValueError covers JSON and UTF-8 decoding errors
        raise NotACloudEvent(f"not a valid CloudEvent: {exc}") from exc
    return event


# --- HTTP ------------------------------------------------------------------------------------------


def is_http_cloudevent(headers: Mapping[str, str]) -> bool:
    """A CloudEvent in binary mode (`ce-specversion`) or structured or batched mode (content type)."""
    content_type = headers.get("content-type", "").lower()
    return "ce-specversion" in headers or content_type.startswith("application/cloudevents")


def from_http(headers: Mapping[str, str], body: bytes) -> list[Event]:
    """The events of a CloudEvents HTTP request (one, or a batch). NotACloudEvent, or
    ValidationError naming the Baton field a CloudEvent cannot fill."""
    plain = {k.lower(): v for k, v in headers.items()}
    if plain.get("content-type", "").lower().startswith(BATCH):
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise NotACloudEvent(f"a CloudEvents batch must be a JSON array: {exc}") from exc
        if not isinstance(items, list):
            raise NotACloudEvent("a CloudEvents batch must be a JSON array")
        return [
            # one by one, as structured
            to_baton(_parsed(_FORMAT.read, CloudEvent, orjson.dumps(item)), timed=_has_time(item))
            for item in items
        ]
    if "ce-specversion" in plain:
        message = http.HTTPMessage({k: v for k, v in plain.items()}, body)
        return [to_baton(_parsed(http.from_binary, message, _FORMAT, CloudEvent), timed="ce-time" in plain)]
    parsed = _parsed(http.from_structured, http.HTTPMessage(plain, body), _FORMAT, CloudEvent)
    return [to_baton(parsed, timed=_has_time(orjson.loads(body)))]


def _has_time(item: Any) -> bool:
    return isinstance(item, dict) and item.get("time") is not None


# --- AMQP ------------------------------------------------------------------------------------------


def is_amqp_cloudevent(content_type: str | None, headers: Mapping[str, Any]) -> bool:
    if content_type and content_type.lower().startswith("application/cloudevents"):
        return True
    return any(str(k).startswith(_AMQP_PREFIXES) for k in headers)


def _header_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):  # AMQP 0-9-1 long strings may arrive as bytes
        return bytes(value).decode("utf-8", errors="replace")
    return value


def from_amqp(content_type: str | None, headers: Mapping[str, Any], body: bytes) -> Event:
    """A CloudEvent over AMQP: structured (content type application/cloudevents+json) or binary
    (attributes in `cloudEvents:`-prefixed headers, the data as the body)."""
    properties = {amqp.CONTENT_TYPE_PROPERTY: content_type} if content_type else {}
    application = {str(k): _header_value(v) for k, v in headers.items()}
    message = amqp.AMQPMessage(properties, application, body)
    parsed = _parsed(amqp.from_amqp, message, _FORMAT, CloudEvent)
    if content_type and content_type.lower().startswith("application/cloudevents"):
        timed = _has_time(orjson.loads(body))
    else:
        timed = any(k in application for k in (f"{p}time" for p in _AMQP_PREFIXES))
    return to_baton(parsed, timed=timed)


__all__ = [
    "BATCH",
    "STRUCTURED",
    "NotACloudEvent",
    "ValidationError",
    "event_id",
    "from_amqp",
    "from_http",
    "is_amqp_cloudevent",
    "is_http_cloudevent",
    "to_baton",
]
