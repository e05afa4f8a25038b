"""The router service: events in, firings out.

- The consumer of `baton.router` (consumer.py), shared by every replica (competing consumers):
  each event is matched through the index and applied in a group-committed transaction.
- The index follows automations as they change: every change NOTIFYs `baton_automations` with
  the automation's id, and each replica reloads that one (a dedicated LISTEN connection); after
  a lost connection, and every `router_reload_seconds`, it reloads them all. Each replica
  reports the revision it has reached in `router_replicas`.
- A timer judges proactive windows that are over (SKIP LOCKED: replicas share them).
- Webhook calls are made after the firing that holds them committed; a sweep makes those a
  stopped router left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from baton_schemas import utcnow
from baton_schemas.automations import Automation

from ..broker.topology import declare_router_queue
from ..context import ServerContext
from ..db.automations import CHANNEL, automation_from_row
from ..db.types import Connection
from ..events.service import admission_for
from ..events.templates import RenderLimits
from ..metrics import ROUTER_APPLY_SECONDS, ROUTER_FAILURES, ROUTER_FIRINGS, observe_since
from . import buckets
from .actions.webhook import make_call, record_call
from .compiled import CompiledAutomation
from .consumer import Applier, RouterConsumer
from .engine import Matched, apply_events, judge_due
from .firing import Fired, FiringSettings
from .index import NameIndex

log = logging.getLogger(__name__)

_HEARTBEAT_SECONDS = 2.0
_SWEEP_SECONDS = 10.0
_MAINTENANCE_SECONDS = 600.0
_HANDLED_KEPT = timedelta(days=1)


class RouterService:
    name = "router"

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        settings = ctx.settings
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.index = NameIndex()
        self.automations: dict[uuid.UUID, CompiledAutomation] = {}  # the enabled ones
        self.revision = 0
        self.firing_settings = FiringSettings(
            RenderLimits(seconds=settings.router_template_seconds),
            settings.dispatch_lookahead_seconds,
            settings.default_lease_seconds,
        )
        self.applier = Applier(self._apply, max_batch=settings.router_batch_size)
        self.consumer = RouterConsumer(
            ctx.link,
            ctx.publisher,
            self.index,
            admission_for(ctx),
            self.applier,
            prefetch=settings.router_prefetch,
        )
        self._listener: asyncpg.Connection[Any] | None = None
        self._changed: asyncio.Queue[uuid.UUID | None] = asyncio.Queue()
        self._http = httpx.AsyncClient(follow_redirects=False)
        self._calls = asyncio.Semaphore(settings.router_webhook_concurrency)
        self._call_tasks: set[asyncio.Task[None]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.firings = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._ctx.broker.declare(declare_router_queue)
        await self._listen()
        await self.reload_all()
        await self.consumer.start()
        every = self._every
        settings = self._ctx.settings
        self._tasks = [
            asyncio.create_task(self._follow_changes(), name="router-changes"),
            asyncio.create_task(self._timer(), name="router-timer"),
            asyncio.create_task(every(_HEARTBEAT_SECONDS, self._heartbeat), name="router-heartbeat"),
            asyncio.create_task(every(settings.router_reload_seconds, self.reload_all), name="router-reload"),
            asyncio.create_task(every(_SWEEP_SECONDS, self._sweep_calls), name="router-calls"),
            asyncio.create_task(every(_MAINTENANCE_SECONDS, self._maintain), name="router-maintenance"),
        ]
        await self._heartbeat()
        log.info("router %s: %d automations in the index", self.replica, len(self.automations))

    async def stop(self) -> None:
        await self.consumer.stop(grace=self._ctx.settings.shutdown_grace_seconds)
        await self.applier.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._call_tasks:
            await asyncio.wait(set(self._call_tasks), timeout=self._ctx.settings.shutdown_grace_seconds)
        await self._http.aclose()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
        with contextlib.suppress(Exception):
            await self._ctx.pool.execute("DELETE FROM router_replicas WHERE id = $1", self.replica)

    # --- following automations --------------------------------------------------------------

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._ctx.settings.database_url)
        await conn.add_listener(CHANNEL, self._on_notify)
        conn.add_termination_listener(self._on_listener_lost)
        self._listener = conn

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(ValueError):
            self._changed.put_nowait(uuid.UUID(str(payload)))

    def _on_listener_lost(self, _conn: Any) -> None:
        self._changed.put_nowait(None)  # None: reconnect and reload everything

    async def _follow_changes(self) -> None:
        while True:
            first = await self._changed.get()
            ids = {first}
            while not self._changed.empty():
                ids.add(self._changed.get_nowait())
            try:
                if None in ids:
                    await self._relisten()
                    await self.reload_all()
                else:
                    await self.reload({i for i in ids if i is not None})
                await self._heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("router: reloading automations failed (%s); reloading all shortly", exc)
                await asyncio.sleep(1.0)
                self._changed.put_nowait(None)

    async def _relisten(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.terminate()
        self._listener = None
        await self._listen()

    def _take(self, automation: Automation) -> CompiledAutomation | None:
        self.revision = max(self.revision, automation.revision)
        try:
            compiled = CompiledAutomation.of(automation)
        except ValueError as exc:  # written by a newer version, say
            log.warning("router: automation %s cannot be read (%s); ignoring it", automation.name, exc)
            self._drop(automation.id)
            return None
        if not compiled.enabled:
            self._drop(automation.id)
            return None
        self.automations[compiled.id] = compiled
        self.index.add(compiled.id, compiled.leaves)
        return compiled

    def _drop(self, automation_id: uuid.UUID) -> None:
        self.automations.pop(automation_id, None)
        self.index.remove(automation_id)

    async def reload(self, ids: set[uuid.UUID]) -> None:
        rows = await self._ctx.pool.fetch("SELECT * FROM automations WHERE id = ANY($1::uuid[])", list(ids))
        taken = []
        for row in rows:
            compiled = self._take(automation_from_row(row))
            if compiled is not None:
                taken.append(compiled)
        for gone in ids - {r["id"] for r in rows}:
            self._drop(gone)
        await self._open_rolling(taken)

    async def reload_all(self) -> None:
        rows = await self._ctx.pool.fetch("SELECT * FROM automations")
        found = {r["id"] for r in rows}
        for gone in set(self.automations) - found:
            self._drop(gone)
        taken = [c for c in (self._take(automation_from_row(r)) for r in rows) if c is not None]
        if rows:
            self.revision = max(self.revision, max(r["revision"] for r in rows))
        await self._open_rolling(taken)

    async def _open_rolling(self, automations: list[CompiledAutomation]) -> None:
        """Proactive triggers with no `after` and no `for_each` watch from the start."""
        now = utcnow()
        keys = [
            ((a.id, leaf.path, ""), now, now + timedelta(seconds=leaf.trigger.within))
            for a in automations
            for leaf in a.leaves
            if leaf.proactive and not leaf.trigger.after and not leaf.trigger.for_each
        ]
        if keys:
            async with self._ctx.pool.acquire() as conn:
                await buckets.open_rolling(conn, keys)

    async def _heartbeat(self) -> None:
        await self._ctx.pool.execute(
            """INSERT INTO router_replicas (id, revision, heartbeat) VALUES ($1, $2, now())
               ON CONFLICT (id) DO UPDATE SET revision = EXCLUDED.revision, heartbeat = now()""",
            self.replica,
            self.revision,
        )

    # --- applying events and firing ----------------------------------------------------------

    async def _apply(self, batch: list[Matched]) -> None:
        started = time.perf_counter()
        async with self._ctx.pool.acquire() as conn:
            done = await apply_events(
                conn,
                batch,
                self.automations,
                self.firing_settings,
                utcnow(),
                late=self._ctx.settings.router_late_seconds,
            )
        observe_since(ROUTER_APPLY_SECONDS, started)
        self._after_commit(done)

    def _after_commit(self, done: Fired) -> None:
        self.firings += done.firings
        for outcome in done.outcomes:
            ROUTER_FIRINGS.labels(outcome.type).inc()
            if outcome.ok is False:
                ROUTER_FAILURES.labels(outcome.type).inc()
        if done.outbox:
            self._ctx.outbox.sent_after_commit(done.outbox)
        for call in done.calls:
            self._start_call(call)

    async def _timer(self) -> None:
        settings = self._ctx.settings
        while True:
            try:
                async with self._ctx.pool.acquire() as conn:
                    done, judged = await judge_due(
                        conn,
                        self.automations,
                        self.firing_settings,
                        utcnow(),
                        allowance=settings.router_late_seconds,
                    )
                self._after_commit(done)
                if judged >= 500:
                    continue  # more are due
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("router: judging proactive windows failed (%s); will retry", exc)
            await asyncio.sleep(settings.router_timer_seconds)

    # --- webhook calls ------------------------------------------------------------------------

    def _start_call(self, call: dict[str, Any]) -> None:
        task = asyncio.create_task(self._call(call))
        self._call_tasks.add(task)
        task.add_done_callback(self._call_tasks.discard)

    async def _call(self, call: dict[str, Any]) -> None:
        async with self._calls:
            try:
                ok, detail = await make_call(self._http, call)
            except Exception as exc:  # a bug: recorded as failed rather than left to the sweep
                log.exception("router: a webhook call failed")
                ok, detail = False, f"the call failed: {exc!r}"
        if not ok:
            ROUTER_FAILURES.labels("call-webhook").inc()
        try:
            async with self._ctx.pool.acquire() as conn:
                await record_call(conn, call["firing_id"], call["index"], ok, detail)
        except Exception as exc:  # the sweep makes it again later
            log.warning("router: could not record a webhook call's outcome (%s)", exc)

    async def _sweep_calls(self) -> None:
        async with self._ctx.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """UPDATE firing_calls SET due = now() + interval '5 minutes', attempts = attempts + 1
                   WHERE (firing_id, action_index) IN (
                       SELECT firing_id, action_index FROM firing_calls WHERE due <= now()
                       LIMIT 50 FOR UPDATE SKIP LOCKED)
                   RETURNING firing_id, action_index, request"""
            )
        for row in rows:
            self._start_call({"firing_id": row["firing_id"], "index": row["action_index"], **row["request"]})

    async def _maintain(self) -> None:
        async with self._ctx.pool.acquire() as conn:
            await _forget_handled(conn)
            await buckets.forget_early(conn)

    @staticmethod
    async def _every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("router: %s failed (%s); will retry", getattr(job, "__name__", job), exc)


async def _forget_handled(conn: Connection) -> None:
    await conn.execute("DELETE FROM router_events WHERE handled < $1", utcnow() - _HANDLED_KEPT)
    await conn.execute("DELETE FROM router_replicas WHERE heartbeat < now() - interval '1 minute'")
