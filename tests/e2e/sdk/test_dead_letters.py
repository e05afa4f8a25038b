"""`baton dead-letters ls / replay / drop` as an operator uses them against a live server's broker:
why each message was parked, sending one back once its cause is fixed, dropping the hopeless."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from baton_schemas.envelopes import DeadLetterHeaders, Logs
from baton_schemas.logs import LogRecord

from ...support.processes import BATON
from ..conftest import LiveServer
from .conftest import Api, Finished, run_process, unique_name, wait_for


async def baton(env: dict[str, str], cwd: Path, *args: str) -> Finished:
    return await run_process([BATON, "dead-letters", *args], env, cwd)


@pytest.fixture
def env(live_server: LiveServer, tmp_path: Path) -> dict[str, str]:
    return live_server.client_env(amqp=True, BATON_HOME=str(tmp_path / "home"))


async def _parked(env: dict[str, str], cwd: Path) -> dict[str, dict[str, str]]:
    listed = await baton(env, cwd, "ls", "--json", "--limit", "10000")
    return {letter["message_id"]: letter for letter in json.loads(listed.check().stdout)}


async def test_list_replay_and_drop(
    live_server: LiveServer, api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    response = await api.http.post("/flow_runs", json={"flow_name": unique_name("dead", "cli")})
    run_id = uuid.UUID(response.raise_for_status().json()["id"])
    poison, stranded, expired = (str(uuid.uuid4()) for _ in range(3))
    log = LogRecord(flow_run_id=run_id, message=f"replayed {stranded}")

    connection = await aio_pika.connect(live_server.backends.broker_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        # 1. the tracker parks what it cannot read
        tracker = await channel.get_exchange("baton.tracker")
        await tracker.publish(aio_pika.Message(b"{not json", message_id=poison), routing_key="tracker")
        # 2. a good message parked while its cause lasted (as a consumer that gave up would)
        dead = await channel.get_exchange("baton.dead")
        await dead.publish(
            aio_pika.Message(
                Logs(logs=[log]).to_json(),
                message_id=stranded,
                content_type="application/json",
                headers={
                    DeadLetterHeaders.REASON: "database unavailable",
                    DeadLetterHeaders.ORIGINAL_EXCHANGE: "baton.tracker",
                    DeadLetterHeaders.ORIGINAL_ROUTING_KEY: "tracker",
                    DeadLetterHeaders.ORIGINAL_QUEUE: "baton.tracker",
                },
            ),
            routing_key="",
        )
        # 3. one the broker itself dead-lettered: its TTL ran out
        short_lived = await channel.declare_queue(
            exclusive=True, arguments={"x-message-ttl": 1, "x-dead-letter-exchange": "baton.dead"}
        )
        await channel.default_exchange.publish(
            aio_pika.Message(b'{"kind": "late"}', message_id=expired), routing_key=short_lived.name
        )

        async def all_parked() -> dict[str, dict[str, str]] | None:
            parked = await _parked(env, tmp_path)
            return parked if {poison, stranded, expired} <= parked.keys() else None

        parked = await wait_for(all_parked, "the three messages in baton.dead")

    assert "invalid tracker message" in parked[poison]["reason"]
    assert (parked[poison]["exchange"], parked[poison]["routing_key"]) == ("baton.tracker", "tracker")
    assert parked[stranded]["reason"] == "database unavailable"
    assert parked[stranded]["kind"] == "logs"
    assert parked[expired]["reason"].startswith("broker: expired")
    assert parked[expired]["queue"] == short_lived.name
    assert {poison, stranded, expired} <= (await _parked(env, tmp_path)).keys()  # ls took nothing

    table = (await baton(env, tmp_path, "ls")).check().stdout
    assert stranded in table and "database unavailable" in table

    replayed = (await baton(env, tmp_path, "replay", stranded)).check()
    assert replayed.stdout.strip() == "replayed 1 message"
    db = await asyncpg.connect(live_server.backends.database_url)
    try:

        async def stored() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM logs WHERE id = $1", log.id))

        await wait_for(stored, "the replayed log record to be stored by the tracker")
    finally:
        await db.close()
    after = await _parked(env, tmp_path)
    assert stranded not in after and {poison, expired} <= after.keys()

    missing = await baton(env, tmp_path, "replay", stranded)
    assert missing.returncode == 1 and f"not in baton.dead: {stranded}" in missing.stdout

    dropped = (await baton(env, tmp_path, "drop", poison, expired)).check()
    assert dropped.stdout.strip() == "dropped 2 messages"
    assert not {poison, expired, stranded} & (await _parked(env, tmp_path)).keys()


async def test_readable_errors(env: dict[str, str], tmp_path: Path) -> None:
    no_broker = {k: v for k, v in env.items() if k != "BATON_BROKER_URL"}
    failed = await baton(no_broker, tmp_path, "ls")
    assert failed.returncode == 1 and "BATON_BROKER_URL" in failed.stderr
    assert "Traceback" not in failed.stderr
    neither = await baton(env, tmp_path, "replay")
    assert neither.returncode == 1 and "--all" in neither.stderr
    both = await baton(env, tmp_path, "drop", "x", "--all")
    assert both.returncode == 1 and "not both" in both.stderr
    unreachable = {**env, "BATON_BROKER_URL": "amqp://guest:guest@127.0.0.1:9/"}
    down = await baton(unreachable, tmp_path, "ls")
    assert down.returncode == 1 and "cannot connect to the broker" in down.stderr
