"""The README's example, run the way a user runs it: `python hello.py`, no server, no env."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

HELLO = """
from baton import flow, task

@task
def hello(name: str):
    print(f"Hello, {name}")

@flow(retries=3)
def say_hello():
    for name in ["Marvin", "Arthur", "Ford"]:
        hello(name)

if __name__ == "__main__":
    say_hello()
"""


def test_hello_runs_with_no_server_and_logs_its_states(tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text(HELLO)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BATON_") and not key.startswith("PYTEST")
    }
    env["BATON_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Hello, Marvin", "Hello, Arthur", "Hello, Ford"]
    lines = done.stderr.splitlines()
    line = r"^\d\d:\d\d:\d\d\.\d{3} \| INFO    \| "
    assert re.match(line + r"Flow run '[a-z]+-[a-z]+' - Created flow run .* for flow 'say-hello'$", lines[0])
    assert re.match(line + r"Flow run '.*' - Entered state Running\(\)$", lines[1])
    for index, name in enumerate(["hello-0", "hello-1", "hello-2"], start=2):
        assert re.match(line + f"Task run '{name}' - Finished in state Completed\\(\\)$", lines[index])
    assert re.match(line + r"Flow run '.*' - Finished in state Completed\(\)$", lines[5])
    assert len(lines) == 6
