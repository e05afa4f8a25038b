"""A user's project folder (flows/hello.py and baton.yaml), the `baton` CLI run in it against
the live server, and the HTTP API to read back what it did.

Names carry a unique suffix: the server is shared by the whole session, so a test finds only
its own pools, flows and deployments.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ...support.processes import BATON
from ..conftest import LiveServer

PROCESS_TIMEOUT = 60.0

HELLO = '''
from baton import flow


@flow(name="{flow}", log_prints=True)
def say_hello(name: str, count: int = 1, loud: bool = False) -> str:
    """Greets someone, count times."""
    greeting = f"Hello, {{name}}" + ("!" if loud else "")
    for _ in range(count):
        print(greeting)
    return greeting
'''


@dataclass
class Done:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def ok(self) -> Done:
        assert self.returncode == 0, f"{self.args} exited {self.returncode}:\n{self.stdout}\n{self.stderr}"
        return self

    def failed(self) -> str:
        """The one error line of a failed command (exit 1, no traceback)."""
        assert self.returncode == 1, f"{self.args} exited {self.returncode}:\n{self.stdout}\n{self.stderr}"
        assert "Traceback" not in self.stderr + self.stdout, self.stderr
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, self.stderr
        assert lines[0].startswith("error: "), self.stderr
        return lines[0]


@dataclass
class Project:
    """A project folder on disk and the names this test owns."""

    path: Path
    env: dict[str, str]
    http: httpx.Client
    suffix: str

    @property
    def flow(self) -> str:
        return f"say-hello-{self.suffix}"

    @property
    def pool(self) -> str:
        return f"pool-{self.suffix}"

    def write(self, relative: str, text: str) -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    def write_flow(self) -> None:
        self.write("flows/hello.py", HELLO.format(flow=self.flow))

    def write_config(self, config: dict[str, Any]) -> None:
        (self.path / "baton.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    def deployment(self, name: str = "prod", **fields: Any) -> dict[str, Any]:
        """A baton.yaml entry for flows/hello.py in this test's pool."""
        return {
            "name": name,
            "entrypoint": "flows/hello.py:say_hello",
            "work_pool": {"name": self.pool},
            **fields,
        }

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Done:
        completed = subprocess.run(
            list(args),
            env=env or self.env,
            cwd=cwd or self.path,
            capture_output=True,
            text=True,
            timeout=PROCESS_TIMEOUT,
        )
        return Done(list(args), completed.returncode, completed.stdout, completed.stderr)

    def baton(self, *args: str, env: dict[str, str] | None = None) -> Done:
        return self.run(BATON, *args, env=env)

    def python(self, source: str) -> Done:
        script = self.write("script.py", source)
        return self.run(sys.executable, str(script))

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def stored(self, name: str = "prod") -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/deployments/name/{self.flow}/{name}")
        return result

    def runs(self) -> list[dict[str, Any]]:
        """The runs asked for; not those the scheduler makes from the deployments' schedules."""
        items: list[dict[str, Any]] = self.get("/flow_runs", flow_name=self.flow)["items"]
        return [r for r in items if not (r["idempotency_key"] or "").startswith("schedule:")]


@pytest.fixture
def project(live_server: LiveServer, tmp_path: Path) -> Iterator[Project]:
    env = live_server.client_env(BATON_HOME=str(tmp_path / "home"), COLUMNS="200")
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    folder = tmp_path / "project"
    folder.mkdir()
    with httpx.Client(base_url=live_server.api_url, headers=headers, timeout=10) as http:
        yield Project(folder, env, http, uuid.uuid4().hex[:8])


@pytest.fixture
def pool(project: Project) -> str:
    """This test's work pool, created the way a user does."""
    project.baton("work-pool", "create", project.pool, "--type", "process").ok()
    return project.pool
