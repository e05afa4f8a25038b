"""Schedules as a user meets them: baton.yaml, `baton deploy` refusing bad ones before anything is
kept, warnings, `deployment inspect` with the next run times in the user's zone, and the
schedule / pause / resume commands."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Project

SCHEDULES: list[dict[str, Any]] = [
    {"cron": "0 2 * * *", "timezone": "Europe/Berlin", "parameters": {"loud": True}},
    {"interval": "1h30m", "anchor_date": "2026-01-01T00:00:00Z", "slug": "every-90"},
    {
        "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0",
        "timezone": "America/New_York",
        "active": False,
    },
]


def _deploy(project: Project, schedules: list[dict[str, Any]], **fields: Any) -> Any:
    project.write_flow()
    project.write_config(
        {"deployments": [project.deployment(parameters={"name": "x"}, schedules=schedules, **fields)]}
    )
    return project.baton("deploy")


def test_schedules_from_baton_yaml_and_the_commands(project: Project, pool: str) -> None:
    _deploy(
        project, SCHEDULES, schedule_policy={"catchup": "all", "catchup_window": "2h", "overlap": "skip"}
    ).ok()
    stored = project.stored()
    assert [s["slug"] for s in stored["schedules"]] == ["cron-1", "every-90", "rrule-1"]
    assert (
        stored["schedule_policy"]["overlap"] == "skip" and stored["schedule_policy"]["catchup_window"] == 7200
    )
    name = f"{project.flow}/prod"

    env = {**project.env, "TZ": "Asia/Tokyo"}
    shown = project.baton("deployment", "inspect", name, env=env).ok().stdout
    assert "Next runs (Asia/Tokyo)" in shown and "Times are in Asia/Tokyo" in shown
    assert "catchup all within 7200s, overlap skip" in shown
    times = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST", shown)
    assert len(times) == 15  # the next 5 of each schedule, in the user's zone
    # 02:00 in Berlin is 10:00 in Tokyo in winter, 09:00 in summer
    cron_times = [t for t in times if t[11:16] in ("09:00", "10:00")]
    assert len(cron_times) >= 5
    in_utc = project.baton("deployment", "inspect", name, env={**project.env, "TZ": "UTC"}).ok().stdout
    assert "Next runs (UTC)" in in_utc and " UTC" in in_utc

    listed = project.baton("deployment", "schedule", "ls", name).ok().stdout
    assert "cron 0 2 * * * in Europe/Berlin" in listed and "every 1h30m" in listed and "paused" in listed

    paused = project.baton("deployment", "schedule", "pause", name, "cron-1").ok().stdout
    assert f"Paused schedule 'cron-1' of {name}." in paused
    rrule_id = stored["schedules"][2]["id"]
    project.baton("deployment", "schedule", "resume", name, rrule_id).ok()
    assert [s["active"] for s in project.stored()["schedules"]] == [False, True, True]
    project.baton("deployment", "schedule", "delete", name, "every-90", "--yes").ok()
    assert [s["slug"] for s in project.stored()["schedules"]] == ["cron-1", "rrule-1"]
    missing = project.baton("deployment", "schedule", "pause", name, "every-90").failed()
    assert "no schedule 'every-90'" in missing

    assert "Paused deployment" in project.baton("deployment", "pause", name).ok().stdout
    assert project.stored()["paused"] is True
    assert "deployment paused" in project.baton("deployment", "inspect", name).ok().stdout
    project.baton("deployment", "resume", name).ok()
    assert project.stored()["paused"] is False

    # deploying again keeps the ids of the schedules whose slugs stay
    _deploy(project, SCHEDULES).ok()
    again = project.stored()["schedules"]
    assert again[0]["id"] == stored["schedules"][0]["id"] and again[2]["id"] == rrule_id
    assert [s["active"] for s in again] == [True, True, False]  # baton.yaml is the truth again


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ({"cron": "every minute"}, "schedules[0].cron: 'every minute' is not a cron string"),
        (
            {"cron": "0 2 * * *", "timezone": "Mars/Base"},
            "schedules[0].timezone: 'Mars/Base' is not an IANA time zone",
        ),
        ({"rrule": "FREQ=SOMETIMES"}, "schedules[0].rrule: not a valid RFC 5545 rule"),
        ({"interval": 0}, "schedules[0].interval_seconds: Input should be greater than 0"),
        ({"interval": "-5m"}, "schedules[0].interval_seconds: '-5m' is not a duration"),
        (
            {"interval": 60, "parameters": {"colour": "red"}},
            "schedules[0]: parameters: 'colour': not a parameter",
        ),
        (
            {"interval": 60, "parameters": {"count": "many"}},
            "schedules[0]: parameters: count: Input should be a valid integer",
        ),
    ],
)
def test_bad_schedules_fail_at_deploy(
    project: Project, pool: str, schedule: dict[str, Any], says: str
) -> None:
    error = _deploy(project, [schedule]).failed()
    assert says in error, error
    assert project.http.get(f"/deployments/name/{project.flow}/prod").status_code == 404


def test_a_schedule_with_no_future_slot_deploys_with_a_warning(project: Project, pool: str) -> None:
    done = _deploy(project, [{"rrule": "FREQ=DAILY;UNTIL=20210101T000000Z", "slug": "over"}]).ok()
    assert f"Created deployment {project.flow}/prod" in done.stdout
    assert f"warning: {project.flow}/prod: schedule 'over' has no run time after now" in done.stderr
    inspected = project.baton("deployment", "inspect", f"{project.flow}/prod").ok().stdout
    assert "none: no time after now" in inspected


def test_flow_deploy_takes_cron_interval_and_rrule(project: Project, pool: str) -> None:
    project.write_flow()
    done = project.python(
        f"""
        import sys
        sys.path.insert(0, "flows")
        from hello import say_hello

        d = say_hello.deploy(
            "py", "{pool}", cron="*/5 * * * *", interval="10m", rrule="FREQ=DAILY;BYHOUR=7",
            timezone="Europe/Berlin",
            schedules=[{{"cron": "0 0 * * *", "slug": "midnight", "parameters": {{"count": 3}}}}],
            schedule_policy={{"overlap": "buffer_one"}},
        )
        print(",".join(s.slug for s in d.schedules), d.schedule_policy.overlap)
        """
    ).ok()
    assert done.stdout.split() == ["midnight,cron-1,interval-1,rrule-1", "buffer_one"]
    stored = project.stored("py")["schedules"]
    assert {s["schedule"]["timezone"] for s in stored[1:]} == {"Europe/Berlin"}
    refused = project.python(
        f"""
        import sys
        sys.path.insert(0, "flows")
        from hello import say_hello
        from baton import BatonError
        try:
            say_hello.deploy("py2", "{pool}", cron="0 2 * * *", timezone="Nowhere/Land")
        except BatonError as exc:
            print(exc)
        """
    ).ok()
    assert "'Nowhere/Land' is not an IANA time zone" in refused.stdout
