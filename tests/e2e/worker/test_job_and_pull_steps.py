"""Where a run's code comes from (pull steps) and how its process is set up (job variables)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import Setup, wait_until

REMOTE_FLOW = """
import os
from pathlib import Path

from baton import flow


@flow
def from_git(out: str) -> str:
    Path(out).write_text(f"{Path.cwd()}|{os.environ.get('GREETING')}|{Path('VERSION').read_text().strip()}")
    return "cloned"
"""


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _bare_repository(root: Path) -> Path:
    """A bare repository with a flow pushed to branch `main` (v2) and tag `v1`."""
    bare, work = root / "flows.git", root / "checkout"
    _git("init", "--bare", "--quiet", "-b", "main", str(bare), cwd=root)
    _git("init", "--quiet", "-b", "main", str(work), cwd=root)
    (work / "pipelines").mkdir()
    (work / "pipelines" / "remote.py").write_text(textwrap.dedent(REMOTE_FLOW))
    (work / "VERSION").write_text("v1\n")
    _git("add", ".", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "v1", cwd=work)
    _git("tag", "v1", cwd=work)
    (work / "VERSION").write_text("v2\n")
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-am", "v2", cwd=work)
    _git("remote", "add", "origin", str(bare), cwd=work)
    _git("push", "--quiet", "origin", "main", "v1", cwd=work)
    return bare


@pytest.mark.parametrize(("ref", "version"), [("main", "v2"), ("v1", "v1"), (None, "v2")])
def test_a_git_clone_pull_step_fetches_the_flow_from_a_repository(
    setup: Setup, tmp_path_factory: pytest.TempPathFactory, ref: str | None, version: str
) -> None:
    bare = _bare_repository(tmp_path_factory.mktemp("git"))
    out = setup.folder / "out.txt"
    deployment = setup.deployment(
        "pipelines/remote.py:from_git",
        parameters={"out": str(out)},
        pull_steps=[{"kind": "git_clone", "repository": str(bare), "ref": ref}],
        job_variables={"env": {"GREETING": "hi"}},
    )
    setup.start_worker()
    run = setup.api.run(deployment)

    final = setup.api.wait_state(run["id"])

    assert final["type"] == "COMPLETED", final
    cwd, greeting, found = out.read_text().split("|")
    assert Path(cwd).name == "flows"  # the clone, in a scratch directory of the run
    assert (greeting, found) == ("hi", version)
    wait_until(lambda: not Path(cwd).exists(), what="the scratch directory to be removed after the run")


def test_pull_steps_run_in_order_from_the_working_directory(setup: Setup) -> None:
    workdir = setup.folder / "jobs"
    project = setup.folder / "project"
    project.mkdir()
    (project / "flows.py").write_text((setup.folder / "flows.py").read_text())
    out = setup.folder / "steps.txt"
    deployment = setup.deployment(
        "flows.py:hello",
        pull_steps=[
            {"kind": "run_shell_script", "script": f"pwd > {out}"},
            {"kind": "set_working_directory", "directory": str(project)},
            {"kind": "run_shell_script", "script": f"pwd >> {out}"},
        ],
        job_variables={"working_dir": str(workdir)},
    )
    setup.start_worker()
    run = setup.api.run(deployment)

    assert setup.api.wait_state(run["id"])["type"] == "COMPLETED"
    assert out.read_text().split() == [str(workdir), str(project)]


def test_job_variables_set_the_command_and_environment_of_the_process(setup: Setup) -> None:
    marker = setup.folder / "wrapped.txt"
    wrapper = setup.folder / "wrapper.sh"
    wrapper.write_text(f'#!/bin/sh\necho "$GREETING" > {marker}\nexec "$@"\n')
    wrapper.chmod(0o755)
    deployment = setup.deployment(
        "flows.py:hello",
        job_variables={
            "command": f"{wrapper} {sys.executable} -m baton._worker",
            "env": {"GREETING": "wrapped"},
        },
    )
    setup.start_worker("--prestart", "1")  # a custom command never uses the pre-started processes
    run = setup.api.run(deployment, job_variables={"env": {"GREETING": "per-run"}})

    assert setup.api.wait_state(run["id"])["type"] == "COMPLETED"
    assert marker.read_text().strip() == "per-run"


def test_a_command_that_cannot_start_fails_the_run_with_the_reason(setup: Setup) -> None:
    deployment = setup.deployment("flows.py:hello", job_variables={"command": "/no/such/interpreter -m x"})
    setup.start_worker()
    run = setup.api.run(deployment)

    final = setup.api.wait_state(run["id"])

    assert final["type"] == "FAILED"
    assert "could not be started: FileNotFoundError" in final["message"]
