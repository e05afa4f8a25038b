"""Global concurrency limits over the API: management, slots, leases, waits and rate limits."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx


def _name(prefix: str = "lim") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _create(api: httpx.AsyncClient, limit: int, **fields: Any) -> str:
    name = str(fields.pop("name", _name()))
    response = await api.post("/api/concurrency_limits", json={"name": name, "limit": limit, **fields})
    assert response.status_code == 201, response.text
    return name


async def _acquire(api: httpx.AsyncClient, name: str, **fields: Any) -> httpx.Response:
    return await api.post("/api/concurrency_limits/acquire", json={"names": [name], **fields})


async def test_create_list_inspect_update_delete(api: httpx.AsyncClient) -> None:
    name = await _create(api, 2)
    again = await api.post("/api/concurrency_limits", json={"name": name, "limit": 3})
    assert again.status_code == 409
    assert "already exists" in again.json()["detail"]
    listed = (await api.get("/api/concurrency_limits")).json()
    assert [item["limit"] for item in listed if item["name"] == name] == [2]
    updated = await api.patch(
        f"/api/concurrency_limits/{name}", json={"limit": 5, "slot_decay_per_second": 0.5}
    )
    assert updated.json()["limit"] == 5 and updated.json()["slot_decay_per_second"] == 0.5
    inspected = (await api.get(f"/api/concurrency_limits/{name}")).json()
    assert inspected["active_slots"] == 0 and inspected["leases"] == []
    assert (await api.delete(f"/api/concurrency_limits/{name}")).status_code == 204
    missing = await api.get(f"/api/concurrency_limits/{name}")
    assert missing.status_code == 404 and name in missing.json()["detail"]


async def test_bad_limits_are_refused_clearly(api: httpx.AsyncClient) -> None:
    negative = await api.post("/api/concurrency_limits", json={"name": _name(), "limit": -1})
    assert negative.status_code == 422
    name = await _create(api, 2)
    too_many = await _acquire(api, name, slots=3)
    assert too_many.status_code == 422
    assert "has only 2" in too_many.json()["detail"]
    not_a_rate_limit = await _acquire(api, name, mode="rate_limit")
    assert not_a_rate_limit.status_code == 422
    assert "not a rate limit" in not_a_rate_limit.json()["detail"]
    strict = await api.post(
        "/api/concurrency_limits/acquire", json={"names": [_name("none")], "strict": True}
    )
    assert strict.status_code == 404


async def test_slots_are_held_by_leases_and_released(api: httpx.AsyncClient) -> None:
    name = await _create(api, 3)
    first = await _acquire(api, name, slots=2, holder={"type": "process", "id": "one"})
    assert first.status_code == 200, first.text
    lease = first.json()["lease_id"]
    assert first.json()["limits"] == [name]
    full = await _acquire(api, name, slots=2)
    assert full.status_code == 423
    assert full.json()["limits"] == [name] and "Retry-After" in full.headers
    inspected = (await api.get(f"/api/concurrency_limits/{name}")).json()
    assert inspected["active_slots"] == 2 and inspected["denied_slots"] == 2
    assert [(x["slots"], x["holder"]["id"]) for x in inspected["leases"]] == [(2, "one")]
    renewed = await api.post(f"/api/concurrency_leases/{lease}/renew", json={"lease_seconds": 30})
    assert renewed.status_code == 200
    assert (await api.delete(f"/api/concurrency_leases/{lease}")).status_code == 204
    assert (await api.delete(f"/api/concurrency_leases/{lease}")).status_code == 204  # idempotent
    assert (await api.post(f"/api/concurrency_leases/{lease}/renew", json={})).status_code == 404
    assert (await _acquire(api, name, slots=3)).status_code == 200


async def test_a_missing_or_inactive_limit_lets_everything_through(api: httpx.AsyncClient) -> None:
    nobody = _name("nobody")
    passed = await _acquire(api, nobody)
    assert passed.status_code == 200
    assert passed.json() == {"lease_id": None, "limits": [], "missing": [nobody], "expires": None}
    name = await _create(api, 0, active=False)
    inactive = (await _acquire(api, name)).json()
    assert inactive["lease_id"] is None and inactive["missing"] == []  # it exists: no warning


async def test_an_expired_lease_frees_its_slots_and_cannot_be_renewed(api: httpx.AsyncClient) -> None:
    name = await _create(api, 1)
    lease = (await _acquire(api, name, lease_seconds=0.5)).json()["lease_id"]
    # a holder that stopped renewing: the next taker waits for the lease to run out
    taken = await _acquire(api, name, wait_seconds=10)
    assert taken.status_code == 200, taken.text
    renew = await api.post(f"/api/concurrency_leases/{lease}/renew", json={"lease_seconds": 30})
    assert renew.status_code == 404
    assert "expired" in renew.json()["detail"]


async def test_a_waiting_request_is_woken_by_a_release(api: httpx.AsyncClient) -> None:
    name = await _create(api, 1)
    lease = (await _acquire(api, name, lease_seconds=600)).json()["lease_id"]
    waiting = asyncio.ensure_future(_acquire(api, name, wait_seconds=25))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await api.delete(f"/api/concurrency_leases/{lease}")
    # well before the 5 s recheck: the notification woke it (the test's timeout bounds it)
    response = await asyncio.wait_for(waiting, 20)
    assert response.status_code == 200


async def test_reset_frees_everything(api: httpx.AsyncClient) -> None:
    name = await _create(api, 2)
    for _ in range(2):
        assert (await _acquire(api, name)).status_code == 200
    assert (await _acquire(api, name)).status_code == 423
    reset = await api.post(f"/api/concurrency_limits/{name}/reset")
    assert reset.json()["active_slots"] == 0
    assert (await _acquire(api, name)).status_code == 200


async def test_rate_limit_slots_drain_at_the_decay_rate(api: httpx.AsyncClient) -> None:
    name = await _create(api, 2, slot_decay_per_second=2.0)
    for _ in range(2):
        assert (await _acquire(api, name, mode="rate_limit")).status_code == 200
    refused = await _acquire(api, name, mode="rate_limit")
    assert refused.status_code == 423
    assert 0 < refused.json()["retry_after_seconds"] <= 0.5 + 1e-6
    # one slot drains in half a second: a wait of a few seconds is granted
    granted = await _acquire(api, name, mode="rate_limit", wait_seconds=5)
    assert granted.status_code == 200 and granted.json()["lease_id"] is None


async def test_several_limits_are_taken_all_or_nothing(api: httpx.AsyncClient) -> None:
    roomy, tight = await _create(api, 5), await _create(api, 1)
    assert (await _acquire(api, tight)).status_code == 200
    both = await api.post("/api/concurrency_limits/acquire", json={"names": [roomy, tight]})
    assert both.status_code == 423 and both.json()["limits"] == [tight]
    assert (await api.get(f"/api/concurrency_limits/{roomy}")).json()["active_slots"] == 0


async def test_scopes(api: httpx.AsyncClient, api_keys: dict[str, str]) -> None:
    reader = {"Authorization": f"Bearer {api_keys['read']}"}
    worker = {"Authorization": f"Bearer {api_keys['worker']}"}
    made = await api.post("/api/concurrency_limits", json={"name": _name(), "limit": 1}, headers=worker)
    assert made.status_code == 403
    name = await _create(api, 1)
    assert (await _acquire(api, name, holder=None)).status_code == 200
    refused = await api.post("/api/concurrency_limits/acquire", json={"names": [name]}, headers=reader)
    assert refused.status_code == 403
    assert (await api.get("/api/concurrency_limits", headers=reader)).status_code == 200
    await api.post(f"/api/concurrency_limits/{name}/reset")
    taken = await api.post("/api/concurrency_limits/acquire", json={"names": [name]}, headers=worker)
    assert taken.status_code == 200
