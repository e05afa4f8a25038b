"""Webhooks: managed under `/api/webhooks`, called at `/hooks/{slug}` with no API key.

A call is checked by the webhook's signature or token (401), rendered by its template into one
event (400 with the reason if it cannot be), and published like `POST /api/events` (202 once
the broker confirmed it). (Managing webhooks needs a key with the `deploy` scope.)
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from baton_schemas import utcnow
from baton_schemas.events import EventsAccepted, EventTooLarge
from baton_schemas.webhooks import Webhook, WebhookCreate

from ...events import webhooks
from ...events.admission import Refused
from ...events.publish import NotAccepted, publish_events
from ...events.service import admission_for
from ...events.templates import RenderLimits, TemplateError
from ...metrics import EVENTS_RECEIVED
from ..deps import CanDeploy, CanRead, Conn, Ctx

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
hooks = APIRouter(tags=["webhooks"])

MAX_CALL_BYTES = 1024 * 1024


@router.post("", response_model=Webhook, status_code=status.HTTP_201_CREATED)
async def create_webhook(body: WebhookCreate, conn: Conn, _: CanDeploy) -> Webhook:
    try:
        return await webhooks.create_webhook(conn, body)
    except TemplateError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"the template does not compile: {exc}"
        ) from exc
    except webhooks.WebhookExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.get("", response_model=list[Webhook])
async def list_webhooks(conn: Conn, _: CanRead) -> list[Webhook]:
    return await webhooks.list_webhooks(conn)


@router.get("/{name}", response_model=Webhook)
async def read_webhook(name: str, conn: Conn, _: CanRead) -> Webhook:
    try:
        return await webhooks.get_webhook(conn, name)
    except webhooks.WebhookNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(name: str, conn: Conn, _: CanDeploy) -> Response:
    try:
        await webhooks.delete_webhook(conn, name)
    except webhooks.WebhookNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@hooks.post("/hooks/{slug}", status_code=status.HTTP_202_ACCEPTED, response_model=EventsAccepted)
async def call_webhook(slug: str, request: Request, ctx: Ctx) -> EventsAccepted:
    body = await request.body()
    if len(body) > MAX_CALL_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"a webhook call is at most {MAX_CALL_BYTES} bytes"
        )
    async with ctx.pool.acquire() as conn:
        webhook = await webhooks.webhook_for_call(conn, slug)
    if webhook is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no webhook here")
    call = webhooks.Call(
        method=request.method,
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        content_type=request.headers.get("content-type", ""),
    )
    try:
        webhooks.check_call(webhook, call)
    except webhooks.Unauthorized as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from exc
    limits = RenderLimits(seconds=ctx.settings.webhook_render_timeout_seconds)
    try:
        event = await webhooks.event_of_call(webhook, call, limits)
        admission_for(ctx).admit(event, now=utcnow())
        encoded = event.encoded()
    except (webhooks.BadCall, EventTooLarge) as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    except Refused as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"the template rendered a refused event: {exc}"
        ) from exc
    try:
        await publish_events(ctx.publisher, [event], [encoded])
        EVENTS_RECEIVED.labels("webhook").inc()
    except NotAccepted as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return EventsAccepted(accepted=1, ids=[event.id])
