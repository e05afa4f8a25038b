"""The CLI as a person types it, against the live server: runs found by id, id prefix or name;
`flow-run logs --follow` ending with the final state; `--param` keeping a string a string."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from baton_schemas.states import Completed, Running, TimedOut

from ...support.processes import BATON
from ...support.waiting import eventually
from ..conftest import LiveServer
from .conftest import Api, Finished, run_process, unique_name


async def baton(env: dict[str, str], cwd: Path, *args: str) -> Finished:
    return await run_process([BATON, *args], env, cwd)


async def _create(api: Api, flow_name: str, name: str, states: tuple[Any, ...] = ()) -> str:
    response = await api.http.post("/flow_runs", json={"flow_name": flow_name, "name": name})
    response.raise_for_status()
    run_id = str(response.json()["id"])
    for state in states:
        body = {"state": state.model_dump(mode="json"), "force": True}
        (await api.http.post(f"/flow_runs/{run_id}/set_state", json=body)).raise_for_status()
    return run_id


@pytest.fixture
def env(live_server: LiveServer, tmp_path: Path) -> dict[str, str]:
    return live_server.client_env(BATON_HOME=str(tmp_path / "home"), COLUMNS="200")


async def test_runs_are_found_by_id_unique_prefix_or_name(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    flow_name = unique_name("lookup", "cli")
    name = f"brave-{uuid.uuid4().hex[:8]}"
    run_id = await _create(api, flow_name, name)
    twin = f"twin-{uuid.uuid4().hex[:8]}"
    await _create(api, flow_name, twin)
    await _create(api, flow_name, twin)

    for ref in (run_id, run_id[:8], run_id[:13], name):
        shown = await baton(env, tmp_path, "flow-run", "inspect", ref)
        assert shown.check().stdout.splitlines()[0].startswith(f"{name}  ({run_id})"), ref

    ambiguous = await baton(env, tmp_path, "flow-run", "inspect", twin)
    assert ambiguous.returncode == 1
    assert ambiguous.stderr.startswith(f"error: 2 flow runs are named {twin!r}")
    unknown = await baton(env, tmp_path, "flow-run", "logs", "no-such-run-name")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: no flow run has the id, id prefix or name 'no-such-run-name'"

    cancelled = await baton(env, tmp_path, "flow-run", "cancel", name)
    assert cancelled.check().stdout.strip().endswith("): Cancelled")
    assert (await api.run(uuid.UUID(run_id))).state.name == "Cancelled"


async def test_logs_follow_ends_with_the_final_state(api: Api, env: dict[str, str], tmp_path: Path) -> None:
    flow_name = unique_name("followed", "cli")
    done = await _create(api, flow_name, f"done-{uuid.uuid4().hex[:6]}", (Running(), Completed()))
    late = await _create(
        api, flow_name, f"late-{uuid.uuid4().hex[:6]}", (Running(), TimedOut(message="too slow"))
    )
    await api.http.post("/logs", json={"logs": [{"flow_run_id": done, "message": "hello from the run"}]})

    followed = await baton(env, tmp_path, "flow-run", "logs", done[:10], "--follow")
    lines = followed.check().stdout.splitlines()
    assert any(line.endswith("hello from the run") for line in lines)
    assert lines[-1].endswith("ended Completed")

    timed_out = await baton(env, tmp_path, "flow-run", "logs", late, "--follow")
    assert timed_out.returncode == 1
    assert timed_out.stdout.splitlines()[-1].endswith("ended TimedOut: too slow")


async def test_param_keeps_a_string_parameter_a_string(api: Api, env: dict[str, str], tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    pool, flow_name = f"pool-{suffix}", f"labels-{suffix}"
    (await api.http.post("/work_pools", json={"name": pool})).raise_for_status()
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "count": {"type": "integer"},
            "anything": {},
        },
    }
    body = {
        "name": "prod",
        "flow_name": flow_name,
        "entrypoint": "flows.py:labels",
        "work_pool_name": pool,
        "parameter_schema": schema,
    }
    (await api.http.post("/deployments", json=body)).raise_for_status()

    args = ["--param", "label=123", "--param", "note=true", "--param", "count=5", "--param", "anything=[1]"]
    made = await baton(env, tmp_path, "deployment", "run", f"{flow_name}/prod", *args)
    assert made.check().stdout.startswith("Created flow run ")
    [run] = await api.runs(flow_name)
    assert run.parameters == {"label": "123", "note": "true", "count": 5, "anything": [1]}


async def test_version_flow_ls_and_task_runs(api: Api, env: dict[str, str], tmp_path: Path) -> None:
    version = await baton(env, tmp_path, "--version")
    assert version.check().stdout.strip().startswith("baton ")

    flow_name = unique_name("catalogued", "cli")
    run_id = await _create(api, flow_name, f"cat-{uuid.uuid4().hex[:6]}")
    task_id = str(uuid.uuid4())
    info = {"id": task_id, "flow_run_id": run_id, "name": "extract-0", "task_key": "extract", "tags": ["io"]}
    reports = [
        {"task_run": info, "state": state.model_dump(mode="json"), "version": version}
        for version, state in enumerate((Running(), Completed(message="done")), start=1)
    ]
    (await api.http.post("/task_runs/states", json={"reports": reports})).raise_for_status()

    flows = await baton(env, tmp_path, "flow", "ls")
    assert any(line.split()[1:2] == [flow_name] for line in flows.check().stdout.splitlines())
    listed = await baton(env, tmp_path, "task-run", "ls", "--flow-run", run_id[:12])
    [row] = [line for line in listed.check().stdout.splitlines() if "extract-0" in line]
    assert row.split()[:3] == [task_id, "extract-0", "Completed"]
    shown = await baton(env, tmp_path, "task-run", "inspect", task_id)
    out = shown.check().stdout
    assert out.startswith(f"extract-0  ({task_id})") and "io" in out and "done" in out


async def test_api_keys_are_listed_and_revoked_over_the_api(
    live_server: LiveServer, env: dict[str, str], tmp_path: Path
) -> None:
    import subprocess

    from ...support.processes import baton_env

    name = f"temp-{uuid.uuid4().hex[:6]}"
    subprocess.run(  # noqa: ASYNC221 - the first key is made on the server's machine
        [BATON, "api-key", "create", "--name", name, "--scope", "read"],
        env=baton_env(live_server.backends),
        capture_output=True,
        text=True,
        check=True,
    )
    # `env` has only the API's URL and an admin key: no database
    assert not any("DATABASE" in key for key in env)
    listed = await baton(env, tmp_path, "api-key", "ls")
    [row] = [line for line in listed.check().stdout.splitlines() if name in line]
    key_id = row.split()[0]
    revoked = await baton(env, tmp_path, "api-key", "revoke", key_id)
    assert revoked.check().stdout.strip() == f"Revoked API key {key_id}."
    assert name not in (await baton(env, tmp_path, "api-key", "ls")).check().stdout
    everything = (await baton(env, tmp_path, "api-key", "ls", "--all")).check().stdout
    assert name in everything
    again = await baton(env, tmp_path, "api-key", "revoke", key_id)
    assert again.returncode == 1 and again.stderr.startswith(f"error: no usable API key {key_id}")


async def test_a_profile_in_baton_home_is_all_a_new_shell_needs(
    live_server: LiveServer, env: dict[str, str], tmp_path: Path
) -> None:
    """What `make dev` leaves: `baton config set` writes the URL (the key is saved the same
    way), and a shell with only BATON_HOME (or a home holding ~/.baton) talks to the server."""
    home = tmp_path / "profile-home"
    configure = {**env, "BATON_HOME": str(home)}
    saved = await baton(
        configure,
        tmp_path,
        "config",
        "set",
        f"BATON_API_URL={live_server.api_url}",
        f"api_key={env['BATON_API_KEY']}",
    )
    assert saved.check().stdout.strip() == f"Saved BATON_API_URL, BATON_API_KEY in {home / 'profile.env'}"
    fresh = {k: v for k, v in env.items() if not k.startswith("BATON_")}
    shown = (await baton({**fresh, "BATON_HOME": str(home)}, tmp_path, "config", "view")).check().stdout
    assert live_server.api_url in shown and env["BATON_API_KEY"] not in shown  # the key is masked
    listed = await baton({**fresh, "BATON_HOME": str(home)}, tmp_path, "flow-run", "ls", "--limit", "1")
    assert listed.check().returncode == 0
    # without BATON_HOME the profile is ~/.baton/profile.env
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / ".baton").symlink_to(home)
    by_home = await baton(
        {**fresh, "HOME": str(tmp_path / "user")}, tmp_path, "flow-run", "ls", "--limit", "1"
    )
    assert by_home.check().returncode == 0
    removed = await baton({**fresh, "BATON_HOME": str(home)}, tmp_path, "config", "unset", "api_url")
    assert removed.check().stdout.startswith("Removed BATON_API_URL")
    unset = await baton({**fresh, "BATON_HOME": str(home)}, tmp_path, "flow-run", "ls")
    assert unset.returncode == 1 and unset.stderr.startswith("error: BATON_API_URL is not set")


async def test_hints_name_the_pool_and_the_api_path(
    api: Api, live_server: LiveServer, env: dict[str, str], tmp_path: Path
) -> None:
    pool = f"quiet-{uuid.uuid4().hex[:8]}"
    (await api.http.post("/work_pools", json={"name": pool})).raise_for_status()
    listed = await baton(env, tmp_path, "worker", "ls", "--pool", pool)
    assert (
        listed.check().stdout.strip()
        == f"No workers in pool {pool!r} (start one: baton worker start --pool {pool})"
    )
    no_api = await baton(
        env, tmp_path, "config", "set", f"BATON_API_URL={live_server.api_url[: -len('/api')]}"
    )
    assert "does not end in /api" in no_api.check().stderr


async def test_watching_a_run_whose_pool_has_no_worker_online_says_so(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    pool, flow_name = f"idle-{suffix}", f"unwatched-{suffix}"
    (await api.http.post("/work_pools", json={"name": pool})).raise_for_status()
    body = {"name": "d", "flow_name": flow_name, "entrypoint": "f.py:f", "work_pool_name": pool}
    deployment = await api.http.post("/deployments", json=body)
    deployment.raise_for_status()
    watching = asyncio.create_task(baton(env, tmp_path, "deployment", "run", f"{flow_name}/d", "--watch"))

    async def made() -> list[dict[str, Any]]:
        found = await api.http.get("/flow_runs", params={"deployment_id": deployment.json()["id"]})
        return list(found.json()["items"])

    runs = await eventually(made, what="the watched run created")
    # nobody will run it: cancel it, which ends the watch
    await baton(env, tmp_path, "flow-run", "cancel", runs[0]["id"])
    done = await watching
    assert "Cancelled" in done.stdout, done.stdout
    assert (
        f"note: no worker of pool {pool!r} is online: the run waits until one starts "
        f"(baton worker start --pool {pool})"
    ) in " ".join(done.stderr.split())
