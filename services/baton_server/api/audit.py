"""Every change made through the API is recorded with the key that made it (`GET /api/audit`).

`AuditLog` is an ASGI middleware inside the key gate: after a request that changes something
(POST, PUT, PATCH, DELETE under /api) has succeeded, it records the key, the method, the path,
the route and the status. A route adds what the path does not say through
`request.state.audit_detail`. Reports that flow runs send by the thousand (heartbeats, task-run
states, logs, state proposals) are not audit events: their routes are marked `not_audited`
(their effects have histories of their own); a route may still record one such request by
setting `request.state.audit = True` (a forced state change does).

Records are written in batches by `AuditTrail`, shortly after the response, off the request's
path; when writes fall behind, `record` waits for room (it never drops one), and the trail is
flushed when the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from ..db.audit import AuditRecord, insert_audit
from .auth import ApiKey
from .gate import API_PREFIX, KEY_STATE

log = logging.getLogger(__name__)

_UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
F = TypeVar("F", bound=Callable[..., Any])


def not_audited(endpoint: F) -> F:
    """Mark a route whose requests are reports, not changes (see the module's docstring)."""
    endpoint.baton_audited = False  # type: ignore[attr-defined]
    return endpoint


def route_template(path: str, params: dict[str, Any]) -> str:
    """The route a path matched, its parameters named: /api/work_pools/etl -> /api/work_pools/{pool}."""
    by_value = {str(value): name for name, value in params.items()}
    return "/".join(f"{{{by_value[part]}}}" if part in by_value else part for part in path.split("/"))


class AuditTrail:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        acquire_timeout: float = 5.0,
        batch: int = 500,
        capacity: int = 10_000,
        max_backoff: float = 5.0,
    ) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._batch = batch
        self._max_backoff = max_backoff
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize=capacity)
        self._pending: list[AuditRecord] = []  # taken from the queue, not yet written
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit trail")

    async def record(self, record: AuditRecord) -> None:
        await self._queue.put(record)

    async def stop(self, *, grace: float) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

        async def drain() -> None:
            self._take_all()
            while self._pending:
                await self._write()
                self._take_all()

        try:
            await asyncio.wait_for(drain(), grace)
        except Exception as exc:
            log.error("%d audit records could not be written at shutdown: %r", len(self._pending), exc)

    def _take_all(self) -> None:
        while len(self._pending) < self._batch and not self._queue.empty():
            self._pending.append(self._queue.get_nowait())

    async def _write(self) -> None:
        async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
            await insert_audit(conn, self._pending)
        self.written += len(self._pending)
        for _ in self._pending:
            self._queue.task_done()
        self._pending = []

    async def _run(self) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_UNAVAILABLE),
            wait=wait_exponential_jitter(multiplier=0.1, max=self._max_backoff, jitter=0.1),
            before_sleep=lambda state: log.warning(
                "audit records not written yet (%d waiting): %r",
                len(self._pending),
                state.outcome.exception() if state.outcome else None,
            ),
        )
        while True:
            if not self._pending:
                self._pending.append(await self._queue.get())
            self._take_all()
            await retrying(self._write)  # until the database takes them: nothing is dropped

    async def flushed(self) -> None:
        """Wait until everything recorded so far is written."""
        await self._queue.join()


class AuditLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in CHANGES
            or not scope["path"].startswith(API_PREFIX + "/")
        ):
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watching_send)
        if status is None or status >= 400:
            return
        state = scope.get("state", {})
        audited = getattr(scope.get("endpoint"), "baton_audited", True)
        if not audited and not state.get("audit"):
            return
        key: ApiKey | None = state.get(KEY_STATE)
        route = route_template(scope["path"], scope.get("path_params") or {})
        trail: AuditTrail = scope["app"].state.audit
        await trail.record(
            AuditRecord(
                method=scope["method"],
                path=scope["path"],
                key_id=key.id if key else None,
                key_name=key.name if key else None,
                route=route,
                status=status,
                detail=state.get("audit_detail") or {},
            )
        )
