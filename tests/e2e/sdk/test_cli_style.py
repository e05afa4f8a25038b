"""Issue 16, point 17, against the live server: every listing a user types prints in the one
table style (no box, a header row of sentence-case column names), whatever it lists."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from ...support.processes import BATON
from ..conftest import LiveServer
from .conftest import Api, run_process

ACRONYMS = {"ID", "URL"}
BOX = re.compile(r"[│┃─━╭╮╰╯┏┓┗┛|+]")


async def test_every_listing_has_the_one_table_style(
    api: Api, live_server: LiveServer, tmp_path: Path
) -> None:
    env = live_server.client_env(BATON_HOME=str(tmp_path / "home"), COLUMNS="250")
    suffix = uuid.uuid4().hex[:8]

    async def baton(*args: str) -> str:
        return (await run_process([BATON, *args], env, tmp_path)).check().stdout

    pool, flow_name = f"styled-{suffix}", f"styled-{suffix}"
    await baton("work-pool", "create", pool)
    await baton("variable", "set", f"styled_{suffix}", "42")
    await baton("concurrency-limit", "create", f"styled-{suffix}", "--limit", "2")
    run = await api.http.post("/flow_runs", json={"flow_name": flow_name, "tags": ["style"]})
    run_id = run.json()["id"]
    body = {"name": "d", "flow_name": flow_name, "entrypoint": "f.py:f", "work_pool_name": pool}
    (await api.http.post("/deployments", json=body)).raise_for_status()
    reports = [
        {
            "task_run": {"id": str(uuid.uuid4()), "flow_run_id": run_id, "name": "t-0", "task_key": "t"},
            "state": {"type": "RUNNING", "name": "Running"},
            "version": 1,
        }
    ]
    (await api.http.post("/task_runs/states", json={"reports": reports})).raise_for_status()

    listings = {
        ("flow", "ls"): flow_name,
        ("flow-run", "ls", "--flow", flow_name): run_id,
        ("task-run", "ls", "--flow-run", run_id): "t-0",
        ("deployment", "ls"): flow_name,
        ("work-pool", "ls"): pool,
        ("work-pool", "queue", "ls", pool): "default",
        ("variable", "ls"): f"styled_{suffix}",
        ("concurrency-limit", "ls"): f"styled-{suffix}",
        ("api-key", "ls"): "e2e-admin",
    }
    headers = {}
    for args, row in listings.items():
        lines = [line for line in (await baton(*args)).splitlines() if line.strip()]
        assert any(row in line for line in lines[1:]), (args, lines)
        assert not any(BOX.search(line) for line in lines), (args, lines)
        columns = re.split(r"\s{2,}", lines[0].strip())
        # sentence case ("Work pool"), acronyms ("ID") upper case
        assert all(c in ACRONYMS or c == c[0].upper() + c[1:].lower() for c in columns), (args, lines[0])
        headers[" ".join(args[:2])] = columns
    assert all(c != "Id" for columns in headers.values() for c in columns)
