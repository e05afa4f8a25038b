"""Router processes (`baton server start --service router`) over bursts of events published over
raw AMQP, on a Baton of their own (database and vhost): one SIGKILLed in mid-burst and started
again, and two sharing a 10,000-event burst against 1,000 automations. Every expected firing
happens once, no event counts twice, no run is made twice; the answers are worked out here from
the events (the oracle) and compared with what the routers recorded.

Every event of a burst has the same `occurred`: the order the routers see them in (shuffled,
copies, redeliveries after the kill) then cannot change which window an event falls in, so the
expected firings follow from counting alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import orjson
import pytest

from baton._amqp import PERSISTENT, Connection, Properties
from baton_schemas.topology import EVENTS, ROUTER_QUEUE

from ...support.backends import Backends, separate_backends
from ...support.processes import BATON, ServerProcess, baton_env, server_process
from ...support.waiting import eventually

Key = tuple[str, str]  # automation name, for_each key


@pytest.fixture
def own_backends(backends: Backends) -> Iterator[Backends]:
    """The routers here must be the only ones on their database and vhost."""
    with separate_backends(backends, "routers") as separate:
        yield separate


@dataclass
class Burst:
    automations: list[dict[str, Any]]
    events: list[dict[str, Any]]
    expected: Counter[Key]  # firings per automation and for_each key
    applied: int  # events that concern some automation (their ids go into `router_events`)


@dataclass
class Baton:
    backends: Backends
    logs: Path
    api: httpx.AsyncClient
    db: asyncpg.Pool[Any]
    deployment_id: str

    def router(self) -> Any:
        return server_process(self.backends, self.logs, "router", BATON_SHUTDOWN_GRACE_SECONDS="2")

    async def automations(self, bodies: list[dict[str, Any]]) -> None:
        """Create them (ten at a time) and wait until every router has them all in its index."""
        gate = asyncio.Semaphore(10)
        action = {
            "type": "run-deployment",
            "deployment": self.deployment_id,
            "parameters": {"key": "{{ event.resource['baton.resource.id'] }}"},
        }

        async def one(body: dict[str, Any]) -> int:
            async with gate:
                made = await self.api.post("/automations", json={**body, "actions": [action]})
            assert made.status_code == 201, made.text
            return int(made.json()["revision"])

        revision = max(await asyncio.gather(*(one(b) for b in bodies)))

        async def synced() -> bool:
            behind = await self.db.fetchval(
                """SELECT count(*) FROM router_replicas
                   WHERE revision < $1 AND heartbeat > now() - interval '10 s'""",
                revision,
            )
            alive = await self.db.fetchval(
                "SELECT count(*) FROM router_replicas WHERE heartbeat > now() - interval '10 s'"
            )
            return bool(alive and behind == 0)

        await eventually(synced, timeout=60, what=f"every router at revision {revision}")

    async def fired(self) -> Counter[Key]:
        rows = await self.db.fetch("SELECT automation_name, bucket_key FROM firings")
        return Counter((r["automation_name"], r["bucket_key"]) for r in rows)

    async def check_once(self, unique_events: int) -> None:
        """No event counted twice for one automation, and one run per firing, each once."""
        rows = await self.db.fetch("SELECT automation_id, event_ids FROM firings")
        counted = Counter((r["automation_id"], e) for r in rows for e in r["event_ids"])
        assert counted and max(counted.values()) == 1
        runs = await self.db.fetch("SELECT idempotency_key FROM flow_runs")
        assert len(runs) == len(rows) and len({r["idempotency_key"] for r in runs}) == len(rows)
        assert await self.db.fetchval("SELECT count(*) FROM router_events") == unique_events


@contextlib.asynccontextmanager
async def open_baton(backends: Backends, logs: Path) -> AsyncIterator[Baton]:
    """`baton server start --service api` on these backends, an admin key, a deployment to run."""
    key = subprocess.run(  # noqa: ASYNC221 - the operator's first command, before anything runs
        [BATON, "api-key", "create", "--name", "router-admin", "--scope", "admin"],
        env=baton_env(backends),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with server_process(backends, logs, "api") as api_process:
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(base_url=api_process.api_url, headers=headers, timeout=30) as api,
            asyncpg.create_pool(backends.database_url, min_size=1, max_size=2) as db,
        ):
            assert (await api.post("/work_pools", json={"name": "burst"})).status_code == 201
            made = await api.post(
                "/deployments",
                json={
                    "name": "sink",
                    "flow_name": "burst-sink",
                    "entrypoint": "f.py:f",
                    "work_pool_name": "burst",
                },
            )
            assert made.status_code == 201, made.text
            yield Baton(backends, logs, api, db, made.json()["id"])


async def publish(backends: Backends, messages: list[dict[str, Any]]) -> None:
    """Publish over raw AMQP with confirms, a thousand in flight at a time."""
    connection = await Connection.open(backends.broker_url, name="burst-publisher")
    try:
        channel = await connection.channel(confirms=True)
        for start in range(0, len(messages), 1000):
            confirms = []
            for event in messages[start : start + 1000]:
                props = Properties(
                    content_type="application/json", message_id=event["id"], delivery_mode=PERSISTENT
                )
                confirm = channel.publish(EVENTS, event["event"], orjson.dumps(event), props, mandatory=True)
                assert confirm is not None
                confirms.append(confirm)
            await asyncio.gather(*confirms)
    finally:
        await connection.close()


async def router_queue(backends: Backends) -> tuple[int, int]:
    """The router queue's ready messages and consumers."""
    connection = await aio_pika.connect(backends.broker_url)
    async with connection:
        queue = await (await connection.channel()).declare_queue(ROUTER_QUEUE, passive=True)
        result = queue.declaration_result
        return result.message_count or 0, result.consumer_count or 0


async def drained(baton: Baton, burst: Burst) -> None:
    """Wait until the queue is empty, every event applied, and at least the expected firings."""
    state = ""

    async def done() -> bool:
        nonlocal state
        ready, _ = await router_queue(baton.backends)
        applied = await baton.db.fetchval("SELECT count(*) FROM router_events")
        fired = sum((await baton.fired()).values())
        state = f"{ready} ready, {applied} of {burst.applied} applied, {fired} fired"
        return ready == 0 and applied == burst.applied and fired >= sum(burst.expected.values())

    try:
        await eventually(done, timeout=240, interval=0.5, what="the burst applied")
    except AssertionError:
        raise AssertionError(f"the burst was not applied: {state}") from None


# --- the router killed in mid-burst ---------------------------------------------------------------


def _kill_burst(suffix: str) -> Burst:
    """20 automations counting per key (thresholds 2 to 4); 1,500 events over 5 keys each, plus
    events no automation names and one that no automation's labels match."""
    rng = random.Random(15)
    occurred = datetime.now(UTC).isoformat()
    automations = [
        {
            "name": f"kill-{i}",
            "trigger": {
                "expect": [f"burst-{suffix}.e{i}"],
                "match": {"baton.resource.id": "shop.*"},
                "for_each": ["baton.resource.id"],
                "threshold": 2 + i % 3,
                "within": "1h",
            },
        }
        for i in range(20)
    ]
    events, counted, applied = [], Counter[Key](), 0
    for n in range(1500):
        i, key = rng.randrange(20), f"shop.{rng.randrange(5)}"
        name = f"burst-{suffix}.e{i}"
        if n % 20 == 0:
            name = f"noise-{suffix}.{n}"  # no automation names it
        elif n % 10 == 9:
            key = f"elsewhere.{n}"  # named, but its labels do not match: counts nowhere
        else:
            counted[(f"kill-{i}", key)] += 1
            applied += 1
        events.append(
            {
                "id": str(uuid.uuid4()),
                "occurred": occurred,
                "event": name,
                "resource": {"baton.resource.id": key},
            }
        )
    expected = Counter[Key]()
    for (name, key), count in counted.items():
        threshold = 2 + int(name.split("-")[1]) % 3
        if count // threshold:
            expected[(name, key)] = count // threshold
    return Burst(automations, events, expected, applied)


@pytest.mark.timeout(600)
async def test_a_router_killed_mid_burst_and_restarted_fires_each_firing_once(
    own_backends: Backends, tmp_path: Path
) -> None:
    burst = _kill_burst(uuid.uuid4().hex[:8])
    messages = burst.events * 3  # every event three times, shuffled
    random.Random(3).shuffle(messages)
    async with open_baton(own_backends, tmp_path) as baton:
        await _kill_and_restart(baton, burst, messages)
        assert await baton.fired() == burst.expected
        await baton.check_once(burst.applied)


async def _kill_and_restart(baton: Baton, burst: Burst, messages: list[dict[str, Any]]) -> None:
    with baton.router() as doomed:
        await baton.automations(burst.automations)
        await publish(baton.backends, messages)

        async def some_fired() -> int:
            return sum((await baton.fired()).values())

        await eventually(some_fired, timeout=60, interval=0.02, what="the first firings")
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(10)
    before = sum((await baton.fired()).values())
    assert before < sum(burst.expected.values())  # killed in mid-burst, with work left
    with baton.router():
        await drained(baton, burst)


# --- two routers share a burst ------------------------------------------------------------------


def _big_burst(suffix: str) -> Burst:
    """1,000 automations (exact names, for_each thresholds, wildcards with a label, label
    matches) and 10,000 events: 40% that no automation names, the rest aimed at one automation
    with labels that match it or not."""
    rng = random.Random(10_000)
    occurred = datetime.now(UTC).isoformat()
    automations: list[dict[str, Any]] = []
    for i in range(1000):
        kind = i % 4
        if kind == 0:
            trigger: dict[str, Any] = {"expect": [f"big-{suffix}.e{i}"]}
        elif kind == 1:
            trigger = {"expect": [f"big-{suffix}.f{i}"], "for_each": ["baton.resource.id"], "threshold": 3}
        elif kind == 2:
            trigger = {"expect": [f"big-{suffix}.w{i}.*"], "match": {"zone": "z1"}}
        else:
            trigger = {"expect": [f"big-{suffix}.l{i}"], "match": {"baton.resource.id": f"shop.{i % 7}"}}
        automations.append({"name": f"big-{i}", "trigger": trigger})
    events, counted, applied = [], Counter[Key](), 0
    for n in range(10_000):
        key = f"shop.{rng.randrange(7)}"
        labels = {"baton.resource.id": key, "zone": rng.choice(["z1", "z2"])}
        i = rng.randrange(1000)
        kind = i % 4
        if rng.random() < 0.4:
            name = f"big-{suffix}.none.{n}"
        else:
            name = f"big-{suffix}.{'efwl'[kind]}{i}" + (f".{n}" if kind == 2 else "")
            hits = kind < 2 or (labels["zone"] == "z1" if kind == 2 else key == f"shop.{i % 7}")
            if hits:
                counted[(f"big-{i}", key if kind == 1 else "")] += 1
                applied += 1
        events.append({"id": str(uuid.uuid4()), "occurred": occurred, "event": name, "resource": labels})
    expected = Counter[Key]()
    for (name, key), count in counted.items():
        fires = count // 3 if int(name.split("-")[1]) % 4 == 1 else count
        if fires:
            expected[(name, key)] = fires
    return Burst(automations, events, expected, applied)


async def _share(baton: Baton, routers: int) -> Counter[Key]:
    burst = _big_burst("same")
    with contextlib.ExitStack() as stack:
        started: list[ServerProcess] = [stack.enter_context(baton.router()) for _ in range(routers)]
        await baton.automations(burst.automations)
        await publish(baton.backends, burst.events)
        _, consumers = await router_queue(baton.backends)
        assert consumers == routers
        await drained(baton, burst)
        assert all(p.process.poll() is None for p in started)
    fired = await baton.fired()
    assert fired == burst.expected
    await baton.check_once(burst.applied)
    return fired


@pytest.fixture
def two_backends(backends: Backends) -> Iterator[tuple[Backends, Backends]]:
    """A Baton for one router, and another for two."""
    with separate_backends(backends, "one") as one, separate_backends(backends, "two") as two:
        yield one, two


@pytest.mark.timeout(900)
async def test_two_routers_give_the_firings_of_one_over_10000_events(
    two_backends: tuple[Backends, Backends], tmp_path: Path
) -> None:
    results = []
    for routers, backends in enumerate(two_backends, start=1):
        async with open_baton(backends, tmp_path) as baton:
            results.append(await _share(baton, routers))
    assert results[0] == results[1]
