"""`baton concurrency-limit ...` as a subprocess against the live server (issue 16, point 10)."""

from __future__ import annotations

import json

from .conftest import Limits, limit_name


async def test_create_list_inspect_update_reset_and_delete(limits: Limits) -> None:
    name = limit_name("warehouse")
    made = (await limits.baton("concurrency-limit", "create", name, "--limit", "2")).check()
    assert f"Created concurrency limit {name!r}: 2 slot(s), active." in made.stdout
    again = await limits.baton("concurrency-limit", "create", name, "--limit", "3")
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr

    listed = (await limits.baton("concurrency-limit", "ls")).check().stdout.splitlines()
    assert listed[0].split() == ["Name", "Limit", "Slots", "Decay", "Active", "Denied", "Updated"]
    [row] = [line.split() for line in listed if line.startswith(name)]
    assert row[:5] == [name, "2", "0", "-", "active"]
    as_json = json.loads((await limits.baton("concurrency-limit", "ls", "--json")).check().stdout)
    assert [item["limit"] for item in as_json if item["name"] == name] == [2]

    # a lease held by someone shows in inspect, with its holder
    taken = await limits.http.post(
        "/concurrency_limits/acquire",
        json={"names": [name], "slots": 2, "holder": {"type": "process", "id": "host:42"}},
    )
    assert taken.status_code == 200, taken.text
    inspected = (await limits.baton("concurrency-limit", "inspect", name)).check().stdout
    assert "Slots in use  2 (2 held by leases)" in inspected
    assert taken.json()["lease_id"] in inspected and "process host:42" in inspected
    detail = json.loads((await limits.baton("concurrency-limit", "inspect", name, "--json")).check().stdout)
    assert detail["active_slots"] == 2 and len(detail["leases"]) == 1

    updated = (
        await limits.baton(
            "concurrency-limit", "update", name, "--limit", "5", "--slot-decay-per-second", "0.5"
        )
    ).check()
    assert f"Updated concurrency limit {name!r}: 5 slot(s), 0.5 slot(s) decaying per second, active." in (
        updated.stdout
    )
    nothing = await limits.baton("concurrency-limit", "update", name)
    assert nothing.returncode == 1 and "nothing to update" in nothing.stderr
    disabled = (await limits.baton("concurrency-limit", "disable", name)).check()
    assert "inactive" in disabled.stdout and (await limits.read(name))["active"] is False
    (await limits.baton("concurrency-limit", "update", name, "--enable")).check()
    assert (await limits.read(name))["active"] is True

    reset = (await limits.baton("concurrency-limit", "reset", name)).check()
    assert "all 5 slot(s) free" in reset.stdout
    assert await limits.held(name) == 0

    deleted = (await limits.baton("concurrency-limit", "delete", name)).check()
    assert f"Deleted concurrency limit {name!r}." in deleted.stdout
    for command in ("inspect", "delete", "reset", "enable"):
        gone = await limits.baton("concurrency-limit", command, name)
        assert gone.returncode == 1 and f"no concurrency limit named {name!r}" in gone.stderr, command


async def test_a_rate_limit_and_bad_input(limits: Limits) -> None:
    name = limit_name("partner-api")
    made = await limits.baton(
        "concurrency-limit", "create", name, "--limit", "10", "--slot-decay-per-second", "2", "--disable"
    )
    assert f"{name!r}: 10 slot(s), 2 slot(s) decaying per second, inactive." in made.check().stdout
    listed = (await limits.baton("concurrency-limit", "ls")).check().stdout.splitlines()
    [row] = [line.split() for line in listed if line.startswith(name)]
    assert row[:5] == [name, "10", "0", "2/s", "inactive"]
    tag = limit_name("tag:gpu")
    (await limits.baton("concurrency-limit", "create", tag, "--limit", "1")).check()
    assert "Limit         1" in (await limits.baton("concurrency-limit", "inspect", tag)).check().stdout
    negative = await limits.baton("concurrency-limit", "create", limit_name(), "--limit", "-1")
    assert negative.returncode == 2 and "--limit" in negative.stderr
    no_limit = await limits.baton("concurrency-limit", "create", limit_name())
    assert no_limit.returncode == 2 and "--limit" in no_limit.stderr
