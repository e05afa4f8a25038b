"""The state tracker service: consumes `baton.tracker`, runs the reaper."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from pydantic import TypeAdapter, ValidationError

from baton import _tracing
from baton._amqp import AmqpError, Channel, Connection, Delivery
from baton_schemas.compat import MIN_SCHEMA_VERSION, SCHEMA_VERSION, baton_version
from baton_schemas.envelopes import (
    CreateFlowRun,
    Heartbeat,
    Logs,
    ProposeState,
    RpcReply,
    TaskRunStates,
    TrackerMessage,
)
from baton_schemas.topology import TRACKER, TRACKER_QUEUE, TRACKER_RPC_QUEUE

from ..broker.consumer import Consumer, DeadLetter
from ..broker.outbox import OutboxRow
from ..context import ServerContext
from ..db.flow_runs import InvalidRun, create_flow_run
from ..db.flows import FlowCache
from ..db.on_demand import OnDemand
from ..db.pools import record_worker
from ..db.run_cache import RunCache
from .ingest import cancelling_runs, extend_leases, store_logs, store_task_run_states
from .reaper import Reaper
from .transitions import RunNotFound, propose_flow_run_state
from .write_batch import WriteBatch

log = logging.getLogger(__name__)

_decoder: TypeAdapter[TrackerMessage] = TypeAdapter(TrackerMessage)


def _schema_version_of(body: bytes) -> int | None:
    try:
        value = orjson.loads(body).get("schema_version")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def _unreadable_version(version: int | None) -> str | None:
    """Why a message of envelope schema `version` cannot be read here, or None if it can."""
    if version is None or MIN_SCHEMA_VERSION <= version <= SCHEMA_VERSION:
        return None
    age = "newer" if version > SCHEMA_VERSION else "older"
    return (
        f"a message of envelope schema {version} ({age} than this server: baton {baton_version()}, "
        f"reads schemas {MIN_SCHEMA_VERSION}-{SCHEMA_VERSION}): run a client of baton {baton_version()}"
    )


class TrackerConsumer(Consumer):
    queue_name = TRACKER_QUEUE

    def __init__(
        self,
        ctx: ServerContext,
        *,
        prefetch: int | None = None,
        cache: RunCache | None = None,
        batch: WriteBatch | None = None,
    ) -> None:
        super().__init__(ctx.link, ctx.publisher, prefetch=prefetch or ctx.settings.tracker_prefetch)
        self._ctx = ctx
        self._cache = cache
        self._batch = batch
        self._flows = FlowCache()

    async def handle(self, message: Delivery) -> None:
        try:
            decoded = _decoder.validate_json(message.body)
        except ValidationError as exc:
            # a newer writer's message may not parse at all: its version is the reason then
            unreadable = _unreadable_version(_schema_version_of(message.body))
            if unreadable is not None:
                await self._refuse(message, unreadable)
            raise DeadLetter(f"invalid tracker message: {exc}") from exc
        unreadable = _unreadable_version(decoded.schema_version)
        if unreadable is not None:
            await self._refuse(message, unreadable)
        match decoded:
            case ProposeState():
                # traces on: the proposer's span, the parent of the transition's (else None)
                reply, rows = await self._propose(decoded, _tracing.extract(message.headers))
                await self._answer(message, reply, rows)
            case CreateFlowRun():
                reply, rows = await self._create(decoded)
                await self._answer(message, reply, rows)
            case TaskRunStates():
                if _tracing.enabled():  # a span of the batch, in its flow run's trace
                    with _tracing.span(
                        "store task-run states",
                        parent=_tracing.extract(message.headers),
                        attributes={"baton.task_run_states.count": len(decoded.reports)},
                    ):
                        await self._store_task_run_states(decoded)
                else:
                    await self._store_task_run_states(decoded)
            case Logs():
                async with self._ctx.pool.acquire() as conn:
                    await store_logs(conn, decoded.logs)
            case Heartbeat():
                async with self._ctx.pool.acquire() as conn:
                    await record_worker(conn, decoded)
                    await extend_leases(conn, decoded)
                    # sent as an RPC, a heartbeat learns which of its runs are being cancelled
                    cancelling = await cancelling_runs(conn, decoded.flow_run_ids) if message.reply_to else []
                await self._answer(message, RpcReply(ok=True, cancelling=cancelling), [])

    async def _refuse(self, message: Delivery, reason: str) -> None:
        """A message of a schema this server does not read: the caller of an RPC hears why
        (naming both versions) instead of waiting for a timeout; the message is parked."""
        if message.reply_to:
            self.reply(message, RpcReply(ok=False, status=409, error=reason).to_json())
        raise DeadLetter(reason)

    async def _store_task_run_states(self, batch: TaskRunStates) -> None:
        async with self._ctx.pool.acquire() as conn:
            rows = await store_task_run_states(
                conn, batch.reports, events=self._ctx.settings.events_task_run_states
            )
        self._ctx.outbox.sent_after_commit(rows)

    async def _propose(
        self, proposal: ProposeState, traceparent: str | None
    ) -> tuple[RpcReply, list[OutboxRow]]:
        try:
            # a connection only if the proposal needs its own (most join a batched write)
            async with OnDemand(self._ctx.pool) as conn:
                outcome = await propose_flow_run_state(
                    conn,
                    proposal,
                    default_lease_seconds=self._ctx.settings.default_lease_seconds,
                    slot_wait_seconds=self._ctx.settings.concurrency_slot_wait_seconds,
                    cache=self._cache,
                    batch=self._batch,
                    traceparent=traceparent,
                )
        except RunNotFound as exc:
            return RpcReply(ok=False, error=str(exc), status=404), []
        return RpcReply(ok=True, transition=outcome.result), outcome.outbox

    async def _create(self, request: CreateFlowRun) -> tuple[RpcReply, list[OutboxRow]]:
        try:
            async with self._ctx.pool.acquire() as conn:
                run, rows, _ = await create_flow_run(conn, request.run, cache=self._cache, flows=self._flows)
        except InvalidRun as exc:
            return RpcReply(ok=False, error=str(exc), status=exc.status), []
        return RpcReply(ok=True, flow_run=run), rows

    async def _answer(self, message: Delivery, reply: RpcReply, rows: list[OutboxRow]) -> None:
        """Reply, then hand the committed rows to the outbox: the caller waits on the reply,
        nobody waits on the publish, and the outbox's frames would otherwise go out first."""
        try:
            self.reply(message, reply.to_json())
        finally:
            self._ctx.outbox.sent_after_commit(rows)


class TrackerRpcConsumer(TrackerConsumer):
    """The same handler on the RPC queue."""

    queue_name = TRACKER_RPC_QUEUE


class TrackerService:
    name = "tracker"

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        # the runs this process wrote last: their next transition skips reading them back
        cache = RunCache()
        # concurrent transitions of different runs share a statement (group commit)
        batch = WriteBatch()
        self._consumers = [
            TrackerConsumer(ctx, cache=cache, batch=batch),
            TrackerRpcConsumer(ctx, prefetch=ctx.settings.tracker_rpc_prefetch, cache=cache, batch=batch),
        ]
        self._reaper = Reaper(
            ctx.pool,
            ctx.outbox,
            interval=ctx.settings.reaper_interval_seconds,
            default_lease_seconds=ctx.settings.default_lease_seconds,
            probe=self._probe,
        )
        self._probe_channel: Channel | None = None
        ctx.link.on_reconnect(self._on_reconnect)

    async def start(self) -> None:
        for consumer in self._consumers:
            await consumer.start()
        self._reaper.start()

    async def _on_reconnect(self, _connection: Connection) -> None:
        self._probe_channel = None  # it went with the old connection
        self._reaper.regained("the broker (reconnected)")

    async def _probe(self) -> None:
        """A round trip to the broker on the tracker's own connection: can heartbeats reach us?"""
        try:
            if self._probe_channel is None or not self._probe_channel.is_open:
                self._probe_channel = await self._ctx.link.connection.channel()
            await self._probe_channel.check_exchange(TRACKER)
        except BaseException:
            channel, self._probe_channel = self._probe_channel, None
            if channel is not None:
                with contextlib.suppress(AmqpError, OSError, TimeoutError):
                    await asyncio.wait_for(channel.close(), 1.0)
            raise

    async def stop(self) -> None:
        for consumer in self._consumers:
            await consumer.stop(grace=self._ctx.settings.shutdown_grace_seconds)
        await self._reaper.stop()
