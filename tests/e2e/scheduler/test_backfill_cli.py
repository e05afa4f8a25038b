"""`baton deployment backfill` as a user runs it: a dry run lists the slots, a backfill makes
their runs, a second one makes nothing new; a bad range is a readable error."""

from __future__ import annotations

import subprocess
import uuid
from datetime import timedelta

import httpx

from baton_schemas import utcnow

from ...support.processes import BATON
from ..conftest import LiveServer


def _baton(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BATON, *args], env=server.client_env(COLUMNS="200"), capture_output=True, text=True, timeout=60
    )


def test_backfill_from_the_cli(live_server: LiveServer) -> None:
    pool, flow = f"pool-{uuid.uuid4().hex[:8]}", f"flow-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    with httpx.Client(base_url=live_server.api_url, headers=headers, timeout=30) as api:
        assert api.post("/work_pools", json={"name": pool}).status_code == 201
        created = api.post(
            "/deployments",
            json={
                "name": "nightly",
                "flow_name": flow,
                "entrypoint": "x.py:f",
                "work_pool_name": pool,
                "schedules": [{"schedule": {"kind": "cron", "cron": "0 2 * * *"}, "slug": "two-am"}],
                "paused": True,  # only the backfill makes runs
            },
        )
        assert created.status_code == 201, created.text
    today = utcnow().date()
    start, end = (today - timedelta(days=7)).isoformat() + "T00:00Z", today.isoformat() + "T00:00Z"
    name = f"{flow}/nightly"

    dry = _baton(live_server, "deployment", "backfill", name, "--start", start, "--end", end, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: 7 slots" in dry.stdout and dry.stdout.count("would be made") == 7

    first = _baton(live_server, "deployment", "backfill", name, "--start", start, "--end", end)
    assert first.returncode == 0, first.stderr
    assert "7 runs made, 0 slots had one" in first.stdout
    second = _baton(live_server, "deployment", "backfill", name, "--start", start, "--end", end)
    assert "0 runs made, 7 slots had one" in second.stdout

    bad = _baton(live_server, "deployment", "backfill", name, "--start", end, "--end", start)
    assert bad.returncode != 0 and "end must be after start" in bad.stdout + bad.stderr
