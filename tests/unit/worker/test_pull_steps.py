"""Pull steps in the run's process: clone, move, run; failures say which step and why."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton._worker._pull_steps import PullStepError, run_pull_steps


@pytest.fixture(autouse=True)
def _keep_cwd(tmp_path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(tmp_path)
    yield
    os.chdir(before)


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> tuple[Path, str]:
    """A bare repository on `main` with two commits; returns it and the first commit's sha."""
    bare, work = tmp_path / "origin" / "project.git", tmp_path / "work"
    bare.parent.mkdir()
    _git("init", "--bare", "--quiet", "-b", "main", str(bare), cwd=tmp_path)
    _git("init", "--quiet", "-b", "main", str(work), cwd=tmp_path)
    identity = ["-c", "user.name=t", "-c", "user.email=t@t"]
    (work / "VERSION").write_text("1")
    _git("add", ".", cwd=work)
    _git(*identity, "commit", "--quiet", "-m", "one", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "VERSION").write_text("2")
    _git(*identity, "commit", "--quiet", "-am", "two", cwd=work)
    _git("push", "--quiet", str(bare), "main", cwd=work)
    return bare, first


def test_git_clone_moves_into_the_clone(tmp_path: Path, repository: tuple[Path, str]) -> None:
    bare, _ = repository
    final = run_pull_steps([{"kind": "git_clone", "repository": str(bare), "ref": "main"}])
    assert final == tmp_path / "project" == Path.cwd()
    assert Path("VERSION").read_text() == "2"


def test_git_clone_of_a_commit_and_into_a_directory(tmp_path: Path, repository: tuple[Path, str]) -> None:
    bare, first = repository
    run_pull_steps([{"kind": "git_clone", "repository": str(bare), "ref": first, "directory": "src"}])
    assert Path.cwd() == tmp_path / "src"
    assert Path("VERSION").read_text() == "1"


def test_git_clone_into_an_existing_clone_updates_it(tmp_path: Path, repository: tuple[Path, str]) -> None:
    bare, first = repository
    run_pull_steps([{"kind": "git_clone", "repository": str(bare), "ref": first}])
    os.chdir(tmp_path)
    run_pull_steps([{"kind": "git_clone", "repository": str(bare), "ref": "main"}])
    assert Path("VERSION").read_text() == "2"


def test_steps_run_in_order_from_where_the_last_one_left(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    steps = [
        {"kind": "set_working_directory", "directory": "sub"},
        {"kind": "run_shell_script", "script": "pwd > where.txt"},
    ]
    assert run_pull_steps(steps) == tmp_path / "sub"
    assert (tmp_path / "sub" / "where.txt").read_text().strip() == str(tmp_path / "sub")


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"kind": "run_shell_script", "script": "echo first\necho 'it broke' >&2\nexit 2"},
            "pull step 1 (run_shell_script) failed: the script (echo first) exited with code 2: "
            "first\nit broke",
        ),
        ({"kind": "set_working_directory", "directory": "nowhere"}, "'nowhere' is not a directory"),
        ({"kind": "pip_install_requirements"}, "'requirements.txt' not found in"),
        (
            {"kind": "git_clone", "repository": "/no/such.git"},
            "git clone of /no/such.git exited with code 128",
        ),
        ({"kind": "teleport"}, "pull step 1 (teleport) failed: unknown kind 'teleport'"),
        ({"kind": "git_clone"}, "pull step 1 (git_clone) has bad arguments"),
        ({"kind": "run_shell_script", "script": "true", "shell": "zsh"}, "has bad arguments"),
    ],
)
def test_a_failing_step_says_which_and_why(step: dict[str, object], message: str) -> None:
    with pytest.raises(PullStepError) as caught:
        run_pull_steps([step])
    assert message in str(caught.value)


def test_credentials_in_a_repository_url_are_not_shown() -> None:
    with pytest.raises(PullStepError) as caught:
        run_pull_steps([{"kind": "git_clone", "repository": "https://me:secret@127.0.0.1:9/repo.git"}])
    assert "secret" not in str(caught.value)
    assert "https://***@127.0.0.1:9/repo.git" in str(caught.value)
