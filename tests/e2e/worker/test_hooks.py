"""on_crashed and on_cancellation hooks of deployment runs that the worker ended."""

from __future__ import annotations

import textwrap

from .conftest import Setup, wait_until

HOOKED = """
import os
import time
from pathlib import Path

from baton import flow


def noted(owner, flow_run, state):
    Path(os.environ["HOOK_NOTES"]).open("a").write(f"{owner.name} {flow_run.name} {state.name}\\n")


@flow(on_crashed=[noted], on_cancellation=[noted])
def hooked(mode: str) -> None:
    if mode == "crash":
        os._exit(9)
    time.sleep(60)
"""


def test_the_worker_runs_on_crashed_and_on_cancellation_hooks(setup: Setup) -> None:
    (setup.folder / "hooked.py").write_text(textwrap.dedent(HOOKED))
    notes = setup.folder / "notes.txt"
    deployment = setup.deployment(
        "hooked.py:hooked", job_variables={"env": {"HOOK_NOTES": str(notes)}}, enforce_parameter_schema=False
    )
    setup.start_worker()

    crashed = setup.api.run(deployment, parameters={"mode": "crash"})
    assert setup.api.wait_state(crashed["id"])["type"] == "CRASHED"
    wait_until(lambda: notes.exists() and "Crashed" in notes.read_text(), what="the on_crashed hook")

    sleeping = setup.api.run(deployment, parameters={"mode": "sleep"})
    setup.api.wait_state(sleeping["id"], "RUNNING")
    setup.api.post(f"/flow_runs/{sleeping['id']}/cancel")
    assert setup.api.wait_state(sleeping["id"])["type"] == "CANCELLED"
    wait_until(lambda: "Cancelled" in notes.read_text(), what="the on_cancellation hook")
    assert notes.read_text().splitlines() == [
        f"hooked {crashed['name']} Crashed",
        f"hooked {sleeping['name']} Cancelled",
    ]
