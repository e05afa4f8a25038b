"""Variables (issue 16, point 13): a small JSON key-value store on the server, through
`baton.variables.Variable` in real flows, `baton variable ...` and the HTTP API."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from ...support.processes import BATON
from ..conftest import LiveServer
from .conftest import Api, Finished, run_process, write_flow


@pytest.fixture
def env(live_server: LiveServer, tmp_path: Path) -> dict[str, str]:
    return live_server.client_env(BATON_HOME=str(tmp_path / "home"), COLUMNS="200")


async def baton(env: dict[str, str], cwd: Path, *args: str) -> Finished:
    return await run_process([BATON, *args], env, cwd)


def _name(base: str) -> str:
    return f"{base}_{uuid.uuid4().hex[:8]}"


FLOW = """
    import asyncio, json
    from baton import flow, task
    from baton.variables import Variable

    seen = {}

    @task
    def read_in_task(name):
        return Variable.get(name)

    @flow
    def configure(name: str) -> None:
        seen["set"] = Variable.set(name, {"region": "eu", "sizes": [1, 2]}, tags=["config"]).tags
        try:
            Variable.set(name, "again")
        except ValueError as exc:
            seen["again"] = str(exc)
        seen["get"] = Variable.get(name)
        seen["task"] = read_in_task(name)
        seen["missing"] = Variable.get(name + "_missing", default="fallback")
        seen["overwritten"] = Variable.set(name, 42, overwrite=True).value
        try:
            Variable.set("Not A Name", 1)
        except ValueError as exc:
            seen["bad_name"] = str(exc)
        try:
            Variable.set(name + "_big", "x" * 5000)
        except ValueError as exc:
            seen["too_big"] = str(exc)

    @flow
    async def configure_async(name: str) -> None:
        await Variable.aset(name + "_async", ["a", None, True])
        seen["aget"] = await Variable.aget(name + "_async")
        seen["aunset"] = await Variable.aunset(name + "_async")
        seen["aunset_again"] = await Variable.aunset(name + "_async")
        seen["after"] = await Variable.aget(name + "_async", default=0)

    configure("$name")
    asyncio.run(configure_async("$name"))
    seen["kept"] = Variable.get("$name")  # outside any run as well
    print(json.dumps(seen))
"""


async def test_flows_set_get_overwrite_and_unset_variables(
    api: Api, env: dict[str, str], tmp_path: Path
) -> None:
    name = _name("cfg")
    path = write_flow(tmp_path, FLOW, name=name)
    ran = (await run_process([sys.executable, str(path)], env, tmp_path)).check()
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["set"] == ["config"]
    assert seen["again"] == f"Variable {name!r} already exists. Use `overwrite=True` to update it."
    assert seen["get"] == seen["task"] == {"region": "eu", "sizes": [1, 2]}
    assert seen["missing"] == "fallback"
    assert seen["overwritten"] == 42 and seen["kept"] == 42
    assert "'Not A Name' is not a variable name" in seen["bad_name"]
    assert "at most 5000 characters of JSON (this one has 5002)" in seen["too_big"]
    assert seen["aget"] == ["a", None, True]
    assert (seen["aunset"], seen["aunset_again"], seen["after"]) == (True, False, 0)

    stored = (await api.http.get(f"/variables/{name}")).json()
    assert stored["value"] == 42 and stored["tags"] == []  # overwriting replaced the tags
    assert (await api.http.get(f"/variables/{name}_async")).status_code == 404


async def test_the_cli_lists_gets_sets_and_deletes(api: Api, env: dict[str, str], tmp_path: Path) -> None:
    name, text_name = _name("limits"), _name("greeting")
    made = await baton(
        env, tmp_path, "variable", "set", name, '{"max": 3}', "--tag", "ops", "--tag", "nightly"
    )
    assert made.check().stdout.strip() == f"Set variable {name!r} to " + '{"max": 3}'
    await baton(env, tmp_path, "variable", "set", text_name, "hello world")
    assert (await baton(env, tmp_path, "variable", "get", text_name)).check().stdout == "hello world\n"
    assert (await baton(env, tmp_path, "variable", "get", name)).check().stdout == '{"max": 3}\n'

    taken = await baton(env, tmp_path, "variable", "set", name, "4")
    assert taken.returncode == 1
    assert taken.stderr.startswith(f"error: variable {name!r} already exists: overwrite it")
    replaced = await baton(env, tmp_path, "variable", "set", name, "4", "--overwrite")
    assert replaced.check().stdout.strip() == f"Set variable {name!r} to 4"
    assert (await api.http.get(f"/variables/{name}")).json()["value"] == 4

    await baton(env, tmp_path, "variable", "set", _name("tagged"), "1", "--tag", "ops")
    listed = (await baton(env, tmp_path, "variable", "ls", "--prefix", name)).check().stdout.splitlines()
    assert listed[0].split() == ["Name", "Value", "Tags", "Updated"]
    assert [line.split()[:2] for line in listed[1:]] == [[name, "4"]]
    as_json = json.loads(
        (await baton(env, tmp_path, "variable", "ls", "--tag", "ops", "--json")).check().stdout
    )
    assert all("ops" in v["tags"] for v in as_json) and len(as_json) >= 1
    shown = (await baton(env, tmp_path, "variable", "inspect", text_name)).check().stdout
    assert shown.startswith(text_name) and '"hello world"' in shown

    bad = await baton(env, tmp_path, "variable", "set", "Bad Name", "1")
    assert bad.returncode == 1 and "'Bad Name' is not a variable name" in bad.stderr
    big = await baton(env, tmp_path, "variable", "set", _name("big"), "y" * 5001)
    assert big.returncode == 1 and "at most 5000 characters" in big.stderr

    deleted = await baton(env, tmp_path, "variable", "delete", name)
    assert deleted.check().stdout.strip() == f"Deleted variable {name!r}."
    for command in ("get", "delete"):
        gone = await baton(env, tmp_path, "variable", command, name)
        assert gone.returncode == 1 and gone.stderr.strip() == f"error: no variable named {name!r}"


async def test_the_api_creates_overwrites_and_refuses_bad_variables(api: Api) -> None:
    name = _name("api")
    created = await api.http.post("/variables", json={"name": name, "value": None, "tags": ["t"]})
    assert created.status_code == 201 and created.json()["value"] is None
    again = await api.http.post("/variables", json={"name": name, "value": 1})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    replaced = await api.http.put(f"/variables/{name}", json={"value": [1, 2]})
    assert replaced.status_code == 200 and replaced.json()["value"] == [1, 2]
    fresh = await api.http.put(f"/variables/{name}_new", json={"value": "v"})
    assert fresh.status_code == 201

    for body in ({"name": "UPPER", "value": 1}, {"name": "a" * 256, "value": 1}, {"name": "x y"}):
        refused = await api.http.post("/variables", json=body)
        assert refused.status_code == 422, body
    too_big = await api.http.put(f"/variables/{name}", json={"value": "z" * 4999})
    assert too_big.status_code == 422 and "at most 5000 characters" in too_big.text
    bad_path = await api.http.put("/variables/No%20Such", json={"value": 1})
    assert bad_path.status_code == 422 and "is not a variable name" in bad_path.json()["detail"]
    assert (await api.http.delete(f"/variables/{name}")).status_code == 204
    assert (await api.http.delete(f"/variables/{name}")).status_code == 404
