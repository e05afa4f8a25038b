"""`make dev` (scripts/dev.sh; issue 16, point 15): it starts a server and a worker, runs the
hello flow there and through the worker, and leaves a profile in the user's home
(`~/.baton/profile.env`) holding the API's URL and an admin key, so a new shell with nothing
exported talks to the server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ...support.backends import Backends, separate_backends
from ...support.processes import BATON, ROOT, free_port


def test_make_dev_leaves_a_profile_a_new_shell_needs_nothing_else_for(
    backends: Backends, tmp_path: Path
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    home = user / ".baton"
    plain = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    with separate_backends(backends, "dev") as own:
        port = free_port()
        env = {
            **plain,
            "HOME": str(user),
            "BATON_DATABASE_URL": own.database_url,
            "BATON_BROKER_URL": own.broker_url,
            "BATON_API_PORT": str(port),
        }
        try:
            dev = subprocess.run(
                ["bash", str(ROOT / "scripts" / "dev.sh")],
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert dev.returncode == 0, dev.stdout[-3000:] + dev.stderr[-3000:]
            assert "--- recorded by the server" in dev.stdout

            profile = dict(
                line.split("=", 1) for line in (home / "profile.env").read_text().splitlines() if "=" in line
            )
            assert profile["BATON_API_URL"] == f"http://127.0.0.1:{port}/api"
            assert profile["BATON_API_KEY"].startswith("baton_")
            assert (home / "profile.env").stat().st_mode & 0o077 == 0  # it holds a key

            # a new login shell, started away from the checkout: only HOME and PATH, nothing exported
            shell = {"HOME": str(user), "PATH": os.environ["PATH"]}

            def in_a_new_shell(command: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    ["bash", "-lc", f"{BATON} {command}"], env=shell, cwd=user, capture_output=True, text=True
                )

            runs = in_a_new_shell("flow-run ls --flow say-hello")
            assert runs.returncode == 0, runs.stderr
            assert sum("Completed" in line for line in runs.stdout.splitlines()) == 2  # direct, worker
            keys = in_a_new_shell("api-key ls")
            assert keys.returncode == 0 and "dev-worker" in keys.stdout, keys.stderr
        finally:
            stopped = subprocess.run(
                ["bash", str(ROOT / "scripts" / "stop.sh")],
                env={**plain, "BATON_HOME": str(home)},
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
