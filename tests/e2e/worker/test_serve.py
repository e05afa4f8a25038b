"""`my_flow.serve(name=...)`: a deployment and its worker in one process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from .conftest import Setup, wait_until

SERVED = """
import os
import sys
from pathlib import Path

from baton import flow


@flow(name="served-{suffix}", retries=2, retry_delay_seconds=1, version="7", timeout_seconds=90)
def served(path: str, greeting: str = "hello") -> str:
    Path(path).write_text(f"{{greeting}} from {{os.getpid()}}")
    return greeting


print("imported", file=sys.stderr)  # the run's process imports this file too

if __name__ == "__main__":
    served.serve(
        name="svc",
        parameters={{"path": {path!r}}},
        limit=2,
        heartbeat_seconds=1,
        lease_seconds=3,
    )
"""


def test_serve_registers_the_deployment_and_runs_it_until_sigterm(setup: Setup) -> None:
    out = setup.folder / "served.txt"
    script = setup.folder / "served.py"
    script.write_text(textwrap.dedent(SERVED.format(suffix=setup.suffix, path=str(out))))
    flow_name = f"served-{setup.suffix}"
    log_path = setup.folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(script)], cwd=setup.folder, env=setup.env(), stdout=log, stderr=log
        )
    try:

        def deployment() -> dict[str, object] | None:
            response = setup.api.http.get(f"/deployments/name/{flow_name}/svc")
            return response.json() if response.status_code == 200 and "serving" in _log() else None

        def _log() -> str:
            return log_path.read_text(errors="replace").lower()

        found = wait_until(deployment, what="the served deployment")
        assert found["work_pool_name"] == f"serve-{flow_name}"
        # the flow's own options are the deployment's defaults (issue 16, point 8)
        assert found["retry_policy"] == {"retries": 2, "retry_delay_seconds": 1.0}
        assert (found["version"], found["timeout_seconds"]) == ("7", 90)
        run = setup.api.run(found, parameters={"greeting": "howdy"})

        assert setup.api.wait_state(str(run["id"]))["type"] == "COMPLETED"
        text = out.read_text()
        assert text.startswith("howdy from ")
        assert int(text.rsplit(" ", 1)[1]) != process.pid  # in a process of its own

        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
