"""A deployment's pull steps, run in the flow run's process before its flow is loaded.

Steps run in order, each from the working directory the previous one left: `git_clone` clones
(or updates) a repository and moves into it, `set_working_directory` moves, and
`pip_install_requirements` / `run_shell_script` run commands there. Their output goes to the
process's stdout (the worker ships it as the run's logs); a failing step raises
`PullStepError` whose message (the command and its last lines of output) becomes the run's
state message.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_TAIL_LINES = 8


class PullStepError(Exception):
    """A pull step failed; the message says which and why."""


def _run(
    argv: Sequence[str], what: str, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    """Run a command, echo its output, raise PullStepError with its tail if it fails."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
    except OSError as exc:
        raise PullStepError(f"{what}: cannot run {argv[0]!r}: {exc.strerror or exc}") from exc
    output = _redact(done.stdout.decode(errors="replace"))
    if output:
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
        sys.stdout.flush()
    if done.returncode != 0:
        tail = "\n".join(line for line in output.strip().splitlines()[-_TAIL_LINES:])
        raise PullStepError(f"{what} exited with code {done.returncode}" + (f": {tail}" if tail else ""))


def _redact(text: str) -> str:
    """Hide the credentials of URLs (`https://user:token@host/...`)."""
    return re.sub(r"://[^@/\s]+@", "://***@", text)


def _repository_directory(repository: str) -> str:
    name = repository.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name[:-4] if name.endswith(".git") else name or "repository"


def git_clone(repository: str, ref: str | None = None, directory: str | None = None) -> Path:
    """Clone `repository` at `ref` (a branch, tag or commit) into `directory`; returns it."""
    target = Path(directory or _repository_directory(repository)).resolve()
    what = f"git clone of {_redact(repository)}" + (f" at {ref}" if ref else "")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if (target / ".git").exists():  # a working directory kept between runs: update it
        _run(["git", "-C", str(target), "fetch", "--quiet", "origin", ref or "HEAD"], what, env=env)
        _run(["git", "-C", str(target), "checkout", "--quiet", "--force", "FETCH_HEAD"], what, env=env)
        return target
    if ref and _SHA.match(ref):
        _run(["git", "clone", "--quiet", repository, str(target)], what, env=env)
        _run(["git", "-C", str(target), "checkout", "--quiet", ref], what, env=env)
    else:
        argv = ["git", "clone", "--quiet", "--depth", "1"]
        if ref:
            argv += ["--branch", ref]
        _run([*argv, repository, str(target)], what, env=env)
    return target


def pip_install_requirements(requirements_file: str = "requirements.txt") -> None:
    path = Path(requirements_file)
    if not path.is_file():
        raise PullStepError(f"{requirements_file!r} not found in {Path.cwd()}")
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*argv, "-r", str(path)], f"pip install -r {requirements_file}")


def run_shell_script(script: str) -> None:
    first = script.strip().splitlines()[0] if script.strip() else ""
    _run(["/bin/sh", "-ec", script], f"the script ({first[:80]})")


def set_working_directory(directory: str) -> Path:
    path = Path(directory).expanduser().resolve()
    if not path.is_dir():
        raise PullStepError(f"{directory!r} is not a directory")
    return path


def run_pull_steps(steps: Sequence[dict[str, Any]], log: Callable[[str], None] | None = None) -> Path:
    """Run the steps from the current directory; returns (and moves to) the final directory."""
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, dict):
            raise PullStepError(f"pull step {number} is not an object: {step!r}")
        kind = step.get("kind")
        args = {key: value for key, value in step.items() if key != "kind"}
        if log is not None:
            log(f"Pull step {number}: {kind}")
        try:
            if kind == "git_clone":
                os.chdir(git_clone(**args))
            elif kind == "set_working_directory":
                os.chdir(set_working_directory(**args))
            elif kind == "pip_install_requirements":
                pip_install_requirements(**args)
            elif kind == "run_shell_script":
                run_shell_script(**args)
            else:
                raise PullStepError(f"unknown kind {kind!r}")
        except TypeError as exc:  # a missing or unknown argument
            raise PullStepError(f"pull step {number} ({kind}) has bad arguments: {exc}") from exc
        except PullStepError as exc:
            raise PullStepError(f"pull step {number} ({kind}) failed: {exc}") from exc
    return Path.cwd()
