"""call-webhook: the request is rendered in the firing's transaction and stored with it
(`firing_calls`); it is made once the firing committed, with a timeout and retries (tenacity,
capped exponential backoff with jitter), and its outcome written into the firing. A router that
stops before a call is made leaves its row, which any router's sweep makes later: a call is
made at least once, with the header `Idempotency-Key: {firing key}:{action index}` so that a
receiver can drop a repeat.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import orjson
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from baton_schemas.automations import ActionOutcome, CallWebhook

from ...db.types import Connection
from ...events.templates import TemplateError
from ..templating import render_value
from ._base import ActionContext, ActionFailed, Done

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 10.0


async def prepare_call(conn: Connection, firing: ActionContext, index: int, action: CallWebhook) -> Done:
    try:
        url = await render_value(action.url, firing.context, firing.limits)
        body = await render_value(action.body, firing.context, firing.limits) if action.body else None
        headers = await render_value(action.headers, firing.context, firing.limits)
    except TemplateError as exc:
        raise ActionFailed(str(exc)) from None
    url = str(url)
    if not url.startswith(("http://", "https://")):
        raise ActionFailed(f"the url {url[:200]!r} is not http(s)")
    if body is not None and not isinstance(body, str):
        body = orjson.dumps(body).decode()
    request = {
        "method": action.method,
        "url": url,
        "body": body,
        "headers": {str(k): str(v) for k, v in headers.items()},
        "timeout": action.timeout,
        "retries": action.retries,
        "idempotency_key": f"{firing.key}:{index}",
    }
    await conn.execute(
        "INSERT INTO firing_calls (firing_id, action_index, request) VALUES ($1, $2, $3)",
        firing.firing_id,
        index,
        request,
    )
    outcome = ActionOutcome(
        index=index, type=action.type, ok=None, detail=f"{action.method} {url}: to be made"
    )
    return Done(outcome, call={"firing_id": firing.firing_id, "index": index, **request})


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


async def make_call(http: httpx.AsyncClient, request: dict[str, Any]) -> tuple[bool, str]:
    """Make the request, retrying passing failures; (ok, what happened)."""
    headers = {"Idempotency-Key": request["idempotency_key"], **request["headers"]}
    if request["body"] is not None:
        headers.setdefault("Content-Type", "application/json")
    try:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(1 + request["retries"]),
            wait=wait_exponential_jitter(multiplier=0.2, max=MAX_BACKOFF_SECONDS),
            retry=retry_if_exception(_retryable),
            reraise=True,
        ):
            with attempt:
                response = await http.request(
                    request["method"],
                    request["url"],
                    content=request["body"],
                    headers=headers,
                    timeout=request["timeout"],
                )
                response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        return False, f"{request['method']} {request['url']}: {exc.response.status_code}"
    except httpx.HTTPError as exc:
        return False, f"{request['method']} {request['url']}: {type(exc).__name__}: {exc}"
    return True, f"{request['method']} {request['url']}: {response.status_code}"


async def record_call(conn: Connection, firing_id: uuid.UUID, index: int, ok: bool, detail: str) -> None:
    """Write the call's outcome into its firing and forget the pending call."""
    async with conn.transaction():
        actions = await conn.fetchval("SELECT actions FROM firings WHERE id = $1 FOR UPDATE", firing_id)
        if actions is not None:
            for action in actions:
                if action["index"] == index:
                    action.update(ok=ok, detail=detail)
            # ok once no action failed and none is still to be made
            oks = [action.get("ok") for action in actions]
            verdict = False if False in oks else (None if None in oks else True)
            await conn.execute(
                "UPDATE firings SET actions = $2, ok = $3 WHERE id = $1", firing_id, actions, verdict
            )
        await conn.execute(
            "DELETE FROM firing_calls WHERE firing_id = $1 AND action_index = $2", firing_id, index
        )
