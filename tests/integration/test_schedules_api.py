"""Schedules through the API: ids and slugs, bad input as 422s naming the field, warnings,
pause / resume / delete of one schedule, pause / resume of a deployment, the next run times."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

PARAMETER_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "full": {"type": "boolean", "default": False}},
    "required": ["name"],
    "additionalProperties": False,
}
CRON: dict[str, Any] = {
    "schedule": {"kind": "cron", "cron": "0 2 * * *", "timezone": "Europe/Berlin"},
    "parameters": {"full": True},
}
INTERVAL: dict[str, Any] = {
    "schedule": {"kind": "interval", "interval_seconds": "15m", "anchor_date": "2026-01-01T00:00:00Z"}
}
RRULE: dict[str, Any] = {
    "schedule": {
        "kind": "rrule",
        "rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
        "timezone": "America/New_York",
    },
    "active": False,
    "slug": "mondays",
}


async def _pool(api: httpx.AsyncClient) -> str:
    name = f"pool-{uuid.uuid4().hex[:8]}"
    assert (await api.post("/api/work_pools", json={"name": name, "type": "process"})).status_code == 201
    return name


def _body(pool: str, flow: str, schedules: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "name": "nightly",
        "flow_name": flow,
        "entrypoint": "etl.py:etl",
        "work_pool_name": pool,
        "parameters": {"name": "world"},
        "parameter_schema": PARAMETER_SCHEMA,
        "schedules": schedules,
        **fields,
    }


@pytest.fixture
async def pool(api: httpx.AsyncClient) -> str:
    return await _pool(api)


async def test_schedules_get_slugs_and_ids_kept_across_deploys(api: httpx.AsyncClient, pool: str) -> None:
    flow = f"etl-{uuid.uuid4().hex[:6]}"
    first = await api.post("/api/deployments", json=_body(pool, flow, [CRON, INTERVAL, RRULE]))
    assert first.status_code == 201, first.text
    made = first.json()["schedules"]
    assert [s["slug"] for s in made] == ["cron-1", "interval-1", "mondays"]
    assert made[1]["schedule"]["interval_seconds"] == 900
    assert all(uuid.UUID(s["id"]) for s in made)
    assert first.json()["warnings"] == []
    policy = first.json()["schedule_policy"]
    assert policy == {"catchup": "latest", "catchup_window": 3600.0, "overlap": "allow", "late_after": 15.0}

    # deploy again: the cron schedule changed, the rrule one is gone, a new interval one came
    changed = {**CRON, "schedule": {**CRON["schedule"], "cron": "0 3 * * *"}}
    again = await api.post(
        "/api/deployments",
        json=_body(
            pool,
            flow,
            [changed, INTERVAL, INTERVAL],
            schedule_policy={"overlap": "skip", "catchup_window": "2h"},
        ),
    )
    assert again.status_code == 200, again.text
    kept = again.json()["schedules"]
    assert [s["slug"] for s in kept] == ["cron-1", "interval-1", "interval-2"]
    assert kept[0]["id"] == made[0]["id"] and kept[1]["id"] == made[1]["id"]
    assert kept[2]["id"] not in {s["id"] for s in made}
    assert again.json()["schedule_policy"]["overlap"] == "skip"
    assert again.json()["schedule_policy"]["catchup_window"] == 7200.0
    # a client cannot choose an id: the slug decides
    chosen = {**INTERVAL, "id": str(uuid.uuid4())}
    third = await api.post("/api/deployments", json=_body(pool, flow, [chosen]))
    assert third.json()["schedules"][0]["id"] == made[1]["id"]


@pytest.mark.parametrize(
    ("schedule", "field", "says"),
    [
        ({"kind": "cron", "cron": "every minute"}, "cron", "not a cron string"),
        ({"kind": "cron", "cron": "0 25 * * *"}, "cron", "not a valid cron string"),
        ({"kind": "rrule", "rrule": "FREQ=FORTNIGHTLY"}, "rrule", "RFC 5545"),
        ({"kind": "cron", "cron": "* * * * *", "timezone": "Mars/Base"}, "timezone", "IANA time zone"),
        ({"kind": "interval", "interval_seconds": 0}, "interval_seconds", "greater than 0"),
        ({"kind": "interval", "interval_seconds": -60}, "interval_seconds", "greater than 0"),
    ],
)
async def test_bad_schedules_are_422_naming_the_field(
    api: httpx.AsyncClient, pool: str, schedule: dict[str, Any], field: str, says: str
) -> None:
    good = {"schedule": {"kind": "interval", "interval_seconds": 60}}
    response = await api.post(
        "/api/deployments", json=_body(pool, "bad-input", [good, {"schedule": schedule}])
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"][:4] == ["body", "schedules", 1, "schedule"] and error["loc"][-1] == field
    assert says in error["msg"]
    assert (await api.get("/api/deployments/name/bad-input/nightly")).status_code == 404  # nothing kept


async def test_schedule_parameters_the_flow_does_not_accept_are_422(
    api: httpx.AsyncClient, pool: str
) -> None:
    unknown = {**INTERVAL, "parameters": {"colour": "red"}}
    wrong_type = {**INTERVAL, "parameters": {"full": "yes"}}
    response = await api.post(
        "/api/deployments", json=_body(pool, "bad-parameters", [CRON, unknown, wrong_type])
    )
    assert response.status_code == 422, response.text
    locations = [e["loc"] for e in response.json()["detail"]]
    assert locations == [
        ["body", "schedules", 1, "parameters", "colour"],
        ["body", "schedules", 2, "parameters", "full"],
    ]
    # merged over the deployment's defaults: a schedule may leave out what the deployment gives
    fine = await api.post("/api/deployments", json=_body(pool, "bad-parameters", [CRON]))
    assert fine.status_code == 201, fine.text


async def test_two_schedules_with_one_slug_are_422(api: httpx.AsyncClient, pool: str) -> None:
    response = await api.post(
        "/api/deployments", json=_body(pool, "same-slug", [{**CRON, "slug": "a"}, {**INTERVAL, "slug": "a"}])
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "schedules"]
    assert "unique" in response.json()["detail"][0]["msg"]


async def test_a_schedule_with_no_future_slot_is_accepted_with_a_warning(
    api: httpx.AsyncClient, pool: str
) -> None:
    past = {"schedule": {"kind": "rrule", "rrule": "FREQ=DAILY;UNTIL=20210101T000000Z"}, "slug": "over"}
    response = await api.post("/api/deployments", json=_body(pool, "no-future", [past, INTERVAL]))
    assert response.status_code == 201, response.text
    (warning,) = response.json()["warnings"]
    assert "'over'" in warning and "no run time after now" in warning
    assert [s["slug"] for s in response.json()["schedules"]] == ["over", "interval-1"]


async def test_list_pause_resume_and_delete_one_schedule(api: httpx.AsyncClient, pool: str) -> None:
    created = await api.post(
        "/api/deployments", json=_body(pool, f"etl-{uuid.uuid4().hex[:6]}", [CRON, INTERVAL, RRULE])
    )
    deployment = created.json()["id"]
    base = f"/api/deployments/{deployment}/schedules"
    listed = (await api.get(base)).json()
    assert [(s["slug"], s["active"]) for s in listed] == [
        ("cron-1", True),
        ("interval-1", True),
        ("mondays", False),
    ]

    paused = await api.post(f"{base}/cron-1/pause")
    assert paused.status_code == 200 and paused.json()["active"] is False
    by_id = await api.post(f"{base}/{listed[2]['id']}/resume")
    assert by_id.status_code == 200 and by_id.json()["slug"] == "mondays" and by_id.json()["active"] is True
    assert [s["active"] for s in (await api.get(base)).json()] == [False, True, True]

    assert (await api.delete(f"{base}/interval-1")).status_code == 204
    assert [s["slug"] for s in (await api.get(base)).json()] == ["cron-1", "mondays"]
    missing = await api.post(f"{base}/interval-1/pause")
    assert missing.status_code == 404
    assert (
        missing.json()["detail"]
        == "the deployment has no schedule 'interval-1' (its schedules: 'cron-1', 'mondays')"
    )
    assert (await api.get(f"/api/deployments/{uuid.uuid4()}/schedules")).status_code == 404


async def test_pause_and_resume_a_deployment(api: httpx.AsyncClient, pool: str) -> None:
    created = await api.post("/api/deployments", json=_body(pool, f"etl-{uuid.uuid4().hex[:6]}", [CRON]))
    deployment = created.json()["id"]
    assert (await api.post(f"/api/deployments/{deployment}/pause")).json()["paused"] is True
    assert (await api.get(f"/api/deployments/{deployment}")).json()["paused"] is True
    assert (await api.post(f"/api/deployments/{deployment}/pause")).json()["paused"] is True  # again: no-op
    assert (await api.post(f"/api/deployments/{deployment}/resume")).json()["paused"] is False
    assert (await api.post(f"/api/deployments/{uuid.uuid4()}/pause")).status_code == 404


async def test_upcoming_run_times_of_each_schedule(api: httpx.AsyncClient, pool: str) -> None:
    jittered = {**INTERVAL, "jitter": "1m"}
    created = await api.post(
        "/api/deployments", json=_body(pool, f"etl-{uuid.uuid4().hex[:6]}", [CRON, jittered, RRULE])
    )
    deployment = created.json()["id"]
    after = "2026-03-28T12:00:00Z"
    upcoming = await api.get(
        f"/api/deployments/{deployment}/schedules/upcoming", params={"n": 3, "after": after}
    )
    assert upcoming.status_code == 200, upcoming.text
    cron, interval, rrule = upcoming.json()
    # 02:00 does not exist in Berlin on 29 March: it runs at the jump, 03:00 CEST
    assert cron["slots"] == ["2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z"]
    assert cron["starts"] == cron["slots"] and cron["slug"] == "cron-1"
    assert interval["slots"] == ["2026-03-28T12:15:00Z", "2026-03-28T12:30:00Z", "2026-03-28T12:45:00Z"]
    assert interval["starts"] != interval["slots"]
    assert (rrule["active"], rrule["slots"][0]) == (False, "2026-03-30T13:00:00Z")  # 09:00 EDT
    again = await api.get(
        f"/api/deployments/{deployment}/schedules/upcoming", params={"n": 3, "after": after}
    )
    assert again.json()[1]["starts"] == interval["starts"]  # jitter: the same for the same slot
    naive = await api.get(
        f"/api/deployments/{deployment}/schedules/upcoming", params={"after": "2026-03-28T12:00:00"}
    )
    assert naive.status_code == 422
    assert (
        await api.get(f"/api/deployments/{deployment}/schedules/upcoming", params={"n": 0})
    ).status_code == 422
    now = await api.get(f"/api/deployments/{deployment}/schedules/upcoming")
    assert [len(s["slots"]) for s in now.json()] == [5, 5, 5]
