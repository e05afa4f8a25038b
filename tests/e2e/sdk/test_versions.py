"""A flow whose SDK is of a version the server does not serve is told so in one line that names
both versions, over HTTP, and runs on locally (issue 11, point 6), rather than failing halfway
with an error about a field it did not expect."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import httpx

from baton_schemas import compat

from ..conftest import LiveServer
from .conftest import run_process

FLOW = """
    import baton_schemas.compat as compat

    compat.SCHEMA_VERSION = compat.MIN_SCHEMA_VERSION = {newer}  # an SDK from the future

    from baton import flow


    @flow(name="{name}")
    def newer_sdk():
        print("the body ran")


    if __name__ == "__main__":
        newer_sdk()
"""


async def test_an_sdk_too_new_for_its_server_is_told_so_and_runs_locally(
    live_server: LiveServer, tmp_path: Path
) -> None:
    newer, name = compat.SCHEMA_VERSION + 3, f"newer-sdk-{uuid.uuid4().hex[:8]}"
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(FLOW.format(newer=newer, name=name)))

    finished = await run_process([sys.executable, str(script)], live_server.client_env(), tmp_path)

    assert finished.returncode == 0 and "the body ran" in finished.stdout, finished.stderr
    assert (
        f"this client (baton {compat.baton_version()}, message schema {newer}, reads {newer}) is too new "
        f"for the server (baton {compat.baton_version()}, message schema {compat.SCHEMA_VERSION}"
    ) in finished.stderr
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    async with httpx.AsyncClient(base_url=live_server.api_url, headers=headers) as http:
        runs = (await http.get("/flow_runs", params={"flow_name": name})).json()
    assert runs["items"] == [], "nothing of the refused client's run was stored"
