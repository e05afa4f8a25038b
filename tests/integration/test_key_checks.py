"""Key checks from memory, against the real database: floods of unknown keys cost a few
queries and never push verified keys out; new keys work at once; revoked ones stop within the
documented bound; an API with no connection free answers 503 with Retry-After."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from baton_server.api.app import create_app
from baton_server.api.auth import Scope, create_api_key
from baton_server.api.verifier import KeyVerifier
from baton_server.context import ServerContext
from baton_server.settings import ServerSettings

from ..support.waiting import eventually


def _unknown() -> str:
    return f"baton_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"


@pytest.fixture
async def verifier(ctx: ServerContext) -> AsyncIterator[KeyVerifier]:
    checks = KeyVerifier(ctx.api_pool, refresh_seconds=0.5, min_gap=0.1)
    checks.start()
    try:
        yield checks
    finally:
        await checks.stop()


async def test_a_flood_of_unknown_keys_costs_a_few_reads_and_evicts_nothing(ctx: ServerContext) -> None:
    verifier = KeyVerifier(ctx.api_pool, refresh_seconds=60)  # no periodic re-read in this test
    async with ctx.pool.acquire() as conn:
        key, secret = await create_api_key(conn, name="tests-flood-survivor", scopes={Scope.READ})
    assert await verifier.verify(secret) == key

    floods = [verifier.verify(_unknown()) for _ in range(20_000)]
    assert set(await asyncio.gather(*floods)) == {None}
    # one read per key would be 20,000; reads are shared and spaced
    assert verifier.reads < 200, verifier.reads

    reads = verifier.reads
    assert await verifier.verify(secret) == key, "the verified key is still known"
    assert verifier.reads == reads, "and answered without a query"
    again = _unknown()
    assert await verifier.verify(again) is None
    reads = verifier.reads
    assert await verifier.verify(again) is None, "a digest prefix that failed is refused from memory"
    assert verifier.reads == reads


async def test_a_new_key_works_at_once_and_a_revoked_one_stops(
    ctx: ServerContext, verifier: KeyVerifier
) -> None:
    assert await verifier.verify(_unknown()) is None  # the index is read
    async with ctx.pool.acquire() as conn:
        key, secret = await create_api_key(conn, name="tests-new", scopes={Scope.RUN})
    assert await verifier.verify(secret) == key, "created after the index was read, accepted at once"

    # revoked by another process (no `forget` here): within 2 x refresh_seconds
    async with ctx.pool.acquire() as conn:
        await conn.execute("UPDATE api_keys SET revoked = true WHERE id = $1", key.id)

    async def refused() -> bool:
        return await verifier.verify(secret) is None

    await eventually(refused, timeout=2 * verifier.refresh_seconds + 1, what="the revoked key refused")


@pytest.fixture
async def small_api(
    server_settings: ServerSettings,
) -> AsyncIterator[tuple[ServerContext, httpx.AsyncClient]]:
    """An API whose pool has one connection, and waits 0.2 s for it."""
    settings = server_settings.model_copy(
        update={"api_db_pool_min": 1, "api_db_pool_max": 1, "db_acquire_timeout_seconds": 0.2}
    )
    context = await ServerContext.open(settings, name="baton-tests-small-api", migrate=False)
    app = create_app(settings, context)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://baton.test") as client:
                yield context, client
    finally:
        await context.close()


async def test_no_connection_free_is_a_503_with_retry_after(
    small_api: tuple[ServerContext, httpx.AsyncClient], api_keys: dict[str, str]
) -> None:
    context, client = small_api
    headers = {"Authorization": f"Bearer {api_keys['read']}"}
    assert (await client.get("/api/flows", headers=headers)).status_code == 200  # the key is known now
    held = await context.api_pool.acquire()
    try:
        busy = await client.get("/api/flows", headers=headers)
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "2"
        assert "no database connection came free" in busy.json()["detail"]
        # the services' pool is untouched: readiness and the tracker are not starved
        assert (await client.get("/ready")).status_code == 200
    finally:
        await context.api_pool.release(held)
    assert (await client.get("/api/flows", headers=headers)).status_code == 200
