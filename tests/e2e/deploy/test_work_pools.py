"""`baton work-pool ...` and `baton work-pool queue ...` against a real server."""

from __future__ import annotations

import json
import re

from baton_schemas.job_templates import default_process_template

from .conftest import Project


def _inspect(project: Project) -> dict[str, object]:
    result: dict[str, object] = json.loads(
        project.baton("work-pool", "inspect", project.pool, "--json").ok().stdout
    )
    return result


def test_create_list_inspect_pause_resume_limit_delete(project: Project) -> None:
    created = project.baton("work-pool", "create", project.pool, "--type", "process", "--limit", "4").ok()
    assert f"Created work pool '{project.pool}'" in created.stdout

    listed = project.baton("work-pool", "ls").ok().stdout
    assert project.pool in listed
    pools = json.loads(project.baton("work-pool", "ls", "--json").ok().stdout)
    [mine] = [p for p in pools if p["name"] == project.pool]
    assert (mine["type"], mine["concurrency_limit"], mine["paused"]) == ("process", 4, False)
    assert mine["base_job_template"] == default_process_template()

    shown = _inspect(project)
    assert [(q["name"], q["priority"]) for q in shown["queues"]] == [("default", 1)]  # type: ignore[attr-defined]
    assert shown["workers"] == []
    text = project.baton("work-pool", "inspect", project.pool).ok().stdout
    assert f"Work pool {project.pool} (process) ready" in text
    assert "default" in text and "job_configuration" in text

    project.baton("work-pool", "pause", project.pool).ok()
    assert _inspect(project)["pool"]["paused"] is True  # type: ignore[index]
    project.baton("work-pool", "resume", project.pool).ok()
    assert _inspect(project)["pool"]["paused"] is False  # type: ignore[index]
    project.baton("work-pool", "set-limit", project.pool, "7").ok()
    assert _inspect(project)["pool"]["concurrency_limit"] == 7  # type: ignore[index]
    project.baton("work-pool", "clear-limit", project.pool).ok()
    assert _inspect(project)["pool"]["concurrency_limit"] is None  # type: ignore[index]

    again = project.baton("work-pool", "create", project.pool).failed()
    assert project.pool in again and "exists" in again

    project.baton("work-pool", "delete", project.pool, "--yes").ok()
    gone = project.baton("work-pool", "inspect", project.pool).failed()
    assert project.pool in gone


def test_queues(project: Project, pool: str) -> None:
    made = project.baton(
        "work-pool", "queue", "create", pool, "urgent", "--priority", "1", "--limit", "2"
    ).ok()
    assert "Created queue 'urgent'" in made.stdout
    project.baton("work-pool", "queue", "create", pool, "bulk", "--priority", "5").ok()
    queues = json.loads(project.baton("work-pool", "queue", "ls", pool, "--json").ok().stdout)
    assert [(q["name"], q["priority"]) for q in queues][-1] == ("bulk", 5)
    assert {q["name"]: q["concurrency_limit"] for q in queues}["urgent"] == 2

    project.baton("work-pool", "queue", "pause", pool, "bulk").ok()
    paused = json.loads(project.baton("work-pool", "queue", "ls", pool, "--json").ok().stdout)
    assert {q["name"]: q["paused"] for q in paused} == {"default": False, "urgent": False, "bulk": True}
    project.baton("work-pool", "queue", "resume", pool, "bulk").ok()
    project.baton("work-pool", "queue", "update", pool, "bulk", "--priority", "9").ok()
    project.baton("work-pool", "queue", "delete", pool, "urgent", "--yes").ok()
    final = json.loads(project.baton("work-pool", "queue", "ls", pool, "--json").ok().stdout)
    assert [(q["name"], q["priority"], q["paused"]) for q in final][-1] == ("bulk", 9, False)
    assert "urgent" not in {q["name"] for q in final}

    text = project.baton("work-pool", "queue", "ls", pool).ok().stdout
    assert "bulk" in text and "default" in text


def test_bad_names_and_templates_are_cli_errors(project: Project) -> None:
    bad = project.baton("work-pool", "create", "Has Spaces").failed()
    assert "name" in bad and "lower-case" in bad

    template = project.write("template.json", '{"job_configuration": {"command": "{{ command }}"}, "x": 1}')
    refused = project.baton("work-pool", "create", project.pool, "--base-job-template", str(template))
    # rich wraps the message inside a box whose width depends on the temp path's length
    unboxed = " ".join(re.sub(r"[│╭╮╰╯─]", " ", refused.stderr).split())
    assert refused.returncode == 2 and "unknown keys" in unboxed
    missing = project.baton("work-pool", "inspect", f"nope-{project.suffix}").failed()
    assert f"nope-{project.suffix}" in missing
