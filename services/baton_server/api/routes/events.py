"""Events: `POST /api/events` (Baton JSON or CloudEvents), filtered reads, the live stream.

Filters (the same for reads and the stream): `name` (repeatable, any of; `*` matches any run of
characters, so `order.*` is every name under `order.`), `resource` (repeatable
`KEY=PATTERN`, all of), `related` (repeatable; each names one related resource:
`KEY=PATTERN[,KEY=PATTERN...]` or a bare pattern of its id), `since` and `until` (when the
events occurred).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter, ValidationError

from baton_schemas import utcnow
from baton_schemas.events import Event, EventPage, EventsAccepted, EventTooLarge

from ...events import cloudevents
from ...events.admission import Refused
from ...events.publish import NotAccepted, publish_events
from ...events.service import admission_for
from ...events.store import EventFilter, read_events
from ...events.stream import StreamHub
from ...metrics import EVENTS_RECEIVED
from ..deps import CanEmit, CanRead, Conn, Ctx

router = APIRouter(prefix="/events", tags=["events"])

MAX_EVENTS_PER_REQUEST = 1000
_EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

Names = Annotated[list[str] | None, Query(description="Event name patterns (any of); `*` is a wildcard.")]
Resource = Annotated[list[str] | None, Query(description="KEY=PATTERN labels of the resource (all of).")]
Related = Annotated[
    list[str] | None, Query(description="A related resource: KEY=PATTERN[,KEY=PATTERN] or an id pattern.")
]


def _invalid(errors: list[dict[str, Any]]) -> RequestValidationError:
    return RequestValidationError(errors)


def _validation_errors(exc: ValidationError, *prefix: Any) -> list[dict[str, Any]]:
    return [
        {"loc": ("body", *prefix, *e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]


def _parse(headers: Any, body: bytes) -> tuple[list[Event], bool]:
    """The request's events, and whether it was a list (its errors then name an index)."""
    if cloudevents.is_http_cloudevent(headers):
        try:
            return cloudevents.from_http(dict(headers), body), False
        except cloudevents.NotACloudEvent as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        except ValidationError as exc:
            raise _invalid(_validation_errors(exc)) from None
    start = body.lstrip()[:1]
    try:
        if start == b"[":
            return _EVENTS.validate_json(body), True
        return [Event.model_validate_json(body)], False
    except ValidationError as exc:
        raise _invalid(_validation_errors(exc)) from None


_EVENT_SCHEMA = Event.model_json_schema()
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        _EVENT_SCHEMA,
                        {"type": "array", "items": _EVENT_SCHEMA, "maxItems": MAX_EVENTS_PER_REQUEST},
                    ]
                }
            },
            "application/cloudevents+json": {"schema": {"type": "object"}},
            "application/cloudevents-batch+json": {"schema": {"type": "array"}},
        },
    }
}


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=EventsAccepted, openapi_extra=_BODY)
async def ingest(request: Request, ctx: Ctx, _: CanEmit) -> EventsAccepted:
    """One event, a JSON list of them, or a CloudEvent (binary: `ce-*` headers; structured:
    `application/cloudevents+json`; batched: `application/cloudevents-batch+json`). 202 once the
    broker has confirmed every one: they are then durably accepted. Names under `baton.` are
    Baton's own and refused. (This route needs a key with the `events` scope.)"""
    events, is_list = _parse(request.headers, await request.body())
    if len(events) > MAX_EVENTS_PER_REQUEST:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_EVENTS_PER_REQUEST} events per request"
        )
    admission, now = admission_for(ctx), utcnow()
    errors: list[dict[str, Any]] = []
    bodies: list[bytes] = []
    for index, event in enumerate(events):
        where = (index,) if is_list else ()
        try:
            admission.admit(event, now=now)
            bodies.append(event.encoded())
        except Refused as exc:
            errors.append({"loc": ("body", *where, exc.field), "msg": exc.reason, "type": "refused"})
        except EventTooLarge as exc:
            errors.append({"loc": ("body", *where), "msg": str(exc), "type": "too_large"})
    if errors:
        raise _invalid(errors)
    try:
        await publish_events(ctx.publisher, events, bodies)
        EVENTS_RECEIVED.labels("http").inc(len(events))
    except NotAccepted as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return EventsAccepted(accepted=len(events), ids=[e.id for e in events])


def _filter(
    name: list[str] | None,
    resource: list[str] | None,
    related: list[str] | None,
    since: datetime | None,
    until: datetime | None = None,
) -> EventFilter:
    try:
        return EventFilter.parse(name or (), resource or (), related or (), since, until)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.get("", response_model=EventPage)
async def list_events(
    conn: Conn,
    _: CanRead,
    name: Names = None,
    resource: Resource = None,
    related: Related = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Stored events, newest first; `next_cursor` pages on."""
    wanted = _filter(name, resource, related, since, until)
    try:
        items, next_cursor = await read_events(conn, wanted, cursor=cursor, limit=limit)
    except ValueError as exc:  # a cursor this API did not make
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    return Response(orjson.dumps({"items": items, "next_cursor": next_cursor}), media_type="application/json")


@router.get("/stream")
async def stream_events(
    request: Request,
    _: CanRead,
    name: Names = None,
    resource: Resource = None,
    related: Related = None,
    since: Annotated[datetime | None, Query(description="Backfill what was received since then.")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-sent events (`event: event`, `id:` the store's sequence number, `data:` the event),
    as they are stored. With `Last-Event-ID` (or `since`), what was stored meanwhile first."""
    wanted = _filter(name, resource, related, None)
    hub: StreamHub = request.app.state.event_stream
    start = await hub.start_of_backfill(last_event_id, since)
    return StreamingResponse(
        hub.sse(wanted, start),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
