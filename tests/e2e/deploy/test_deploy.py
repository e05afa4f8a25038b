"""`baton deploy` from a project folder, `baton deployment ...`, `Flow.deploy()` and
`run_deployment()`, against a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import textwrap
import time
from typing import Any

import yaml

from ...support.processes import BATON
from ..conftest import LiveServer
from .conftest import PROCESS_TIMEOUT, Project

FULL: dict[str, Any] = {
    "description": "Greets in production",
    "version": "1.2",
    "tags": ["team-a"],
    "parameters": {"name": "Arthur", "loud": True},
    "pull": [
        {"git_clone": {"repository": "https://example.com/me/hello.git", "branch": "main"}},
        {"set_working_directory": {"directory": "hello"}},
        {"pip_install_requirements": {"requirements_file": "requirements.txt"}},
        {"run_shell_script": "echo ready"},
    ],
    "concurrency_limit": {"limit": 2, "collision_strategy": "cancel-new"},
    "schedules": [
        {"cron": "0 6 * * *", "timezone": "Europe/Paris"},
        {"interval": 3600, "active": False, "parameters": {"count": 2}},
    ],
    "triggers": [{"match": {"baton.resource.id": "baton.flow-run.*"}, "expect": ["etl.done"]}],
}


def test_deploy_stores_the_deployment_and_deploying_again_updates_it(project: Project, pool: str) -> None:
    project.baton("work-pool", "queue", "create", pool, "high", "--priority", "1").ok()
    project.write_flow()
    work_pool = {"name": pool, "work_queue_name": "high", "job_variables": {"env": {"GREETING": "hi"}}}
    project.write_config({"deployments": [project.deployment(work_pool=work_pool, **FULL)]})

    first = project.baton("deploy").ok()
    assert f"Created deployment {project.flow}/prod" in first.stdout
    stored = project.stored()
    assert stored["entrypoint"] == "flows/hello.py:say_hello"
    assert (stored["work_pool_name"], stored["work_queue_name"]) == (pool, "high")
    assert stored["job_variables"] == {"env": {"GREETING": "hi"}}
    assert (stored["description"], stored["version"], stored["tags"]) == (
        "Greets in production",
        "1.2",
        ["team-a"],
    )
    assert stored["parameters"] == {"name": "Arthur", "loud": True}
    assert stored["enforce_parameter_schema"] is True
    schema = stored["parameter_schema"]
    assert schema["required"] == ["name"]
    assert {k: (v.get("type"), v.get("default")) for k, v in schema["properties"].items()} == {
        "name": ("string", None),
        "count": ("integer", 1),
        "loud": ("boolean", False),
    }
    assert stored["pull_steps"] == [
        {
            "kind": "git_clone",
            "repository": "https://example.com/me/hello.git",
            "ref": "main",
            "directory": None,
        },
        {"kind": "set_working_directory", "directory": "hello"},
        {"kind": "pip_install_requirements", "requirements_file": "requirements.txt"},
        {"kind": "run_shell_script", "script": "echo ready"},
    ]
    assert stored["concurrency"] == {"limit": 2, "collision_strategy": "cancel-new"}
    [cron, interval] = stored["schedules"]
    assert (cron["schedule"]["kind"], cron["schedule"]["cron"], cron["schedule"]["timezone"]) == (
        "cron",
        "0 6 * * *",
        "Europe/Paris",
    )
    assert (interval["schedule"]["interval_seconds"], interval["active"], interval["parameters"]) == (
        3600,
        False,
        {"count": 2},
    )
    [trigger] = stored["triggers"]
    assert (trigger["match"], trigger["expect"]) == ({"baton.resource.id": "baton.flow-run.*"}, ["etl.done"])

    changed = {**FULL, "description": "Greets louder", "schedules": []}
    project.write_config({"deployments": [project.deployment(work_pool=work_pool, **changed)]})
    second = project.baton("deploy").ok()
    assert f"Updated deployment {project.flow}/prod" in second.stdout
    updated = project.stored()
    assert updated["id"] == stored["id"]
    assert (updated["description"], updated["schedules"]) == ("Greets louder", [])

    listed = project.baton("deployment", "ls", "--flow", project.flow).ok().stdout
    assert f"{project.flow}/prod" in listed and pool in listed
    shown = json.loads(project.baton("deployment", "inspect", f"{project.flow}/prod", "--json").ok().stdout)
    assert shown["id"] == stored["id"]


def test_deploy_by_name_and_local_default_pull_step(project: Project, pool: str) -> None:
    project.write_flow()
    project.write_config({"deployments": [project.deployment("prod"), project.deployment("dev")]})
    project.baton("deploy", "dev").ok()
    names = [d["name"] for d in project.get("/deployments", flow_name=project.flow)]
    assert names == ["dev"]
    # without pull steps a worker on this machine starts in the project folder
    assert project.stored("dev")["pull_steps"] == [
        {"kind": "set_working_directory", "directory": str(project.path.resolve())}
    ]
    assert "no deployment named 'qa'" in project.baton("deploy", "qa").failed()


def test_deployment_run_merges_parameters_and_is_scheduled(project: Project, pool: str) -> None:
    project.write_flow()
    project.write_config({"deployments": [project.deployment(parameters={"name": "Arthur", "loud": True})]})
    project.baton("deploy").ok()

    made = project.baton(
        "deployment",
        "run",
        f"{project.flow}/prod",
        "--param",
        "name=Ford",
        "--param",
        "count=3",
        "--tag",
        "adhoc",
    ).ok()
    assert "Created flow run" in made.stdout and "Scheduled" in made.stdout
    [run] = project.runs()
    assert run["parameters"] == {"name": "Ford", "count": 3, "loud": True}
    assert run["state"]["type"] == "SCHEDULED"
    assert run["deployment_id"] == project.stored()["id"]
    assert (run["work_pool_name"], run["work_queue_name"]) == (pool, "default")
    assert "adhoc" in run["tags"]

    by_id = project.baton("deployment", "run", project.stored()["id"], "--params", '{"name": "Zaphod"}').ok()
    assert "Created flow run" in by_id.stdout
    assert sorted(r["parameters"]["name"] for r in project.runs()) == ["Ford", "Zaphod"]


def test_a_bad_parameter_is_a_cli_error_naming_the_field_and_creates_nothing(
    project: Project, pool: str
) -> None:
    project.write_flow()
    project.write_config({"deployments": [project.deployment()]})
    project.baton("deploy").ok()

    wrong_type = project.baton(
        "deployment", "run", f"{project.flow}/prod", "--param", "name=Ford", "--param", "count=many"
    )
    assert "parameters.count" in wrong_type.failed()
    missing = project.baton("deployment", "run", f"{project.flow}/prod").failed()
    assert "parameters.name" in missing
    unknown = project.baton(
        "deployment", "run", f"{project.flow}/prod", "--param", "name=A", "--param", "colour=red"
    )
    assert "colour" in unknown.failed()
    assert project.runs() == []


def test_unknown_pool_missing_entrypoint_and_bad_yaml_are_cli_errors(project: Project) -> None:
    project.write_flow()
    project.write_config({"deployments": [project.deployment()]})
    unknown_pool = project.baton("deploy").failed()
    assert f"work pool '{project.pool}' does not exist" in unknown_pool
    assert "deployments[0] (prod)" in unknown_pool

    project.write_config({"deployments": [project.deployment(entrypoint="flows/missing.py:say_hello")]})
    assert "missing.py" in project.baton("deploy").failed()

    project.write("flows/broken.py", "import not_a_module_anywhere\n")
    project.write_config({"deployments": [project.deployment(entrypoint="flows/broken.py:say_hello")]})
    broken = project.baton("deploy").failed()
    assert "not_a_module_anywhere" in broken and "deployments[0] (prod)" in broken

    project.write_config({"deployments": [project.deployment(entrypoint="flows/hello.py:nothing_here")]})
    assert "nothing_here" in project.baton("deploy").failed()

    project.write_config({"deployments": [{"name": "prod", "entrypoint": "flows/hello.py:say_hello"}]})
    assert "deployments[0] (prod): work_pool: Field required" in project.baton("deploy").failed()

    project.write_config({"deployments": [project.deployment(parameters={"count": "lots"})]})
    assert "parameters: count" in project.baton("deploy").failed()

    (project.path / "baton.yaml").unlink()
    assert "baton.yaml does not exist" in project.baton("deploy").failed()
    assert project.get("/deployments", flow_name=project.flow) == []


def test_connection_and_key_problems_are_cli_errors(project: Project) -> None:
    closed = {**project.env, "BATON_API_URL": "http://127.0.0.1:9/api"}
    assert "cannot reach the Baton server" in project.baton("work-pool", "ls", env=closed).failed()
    no_key = {k: v for k, v in project.env.items() if k != "BATON_API_KEY"}
    refused = project.baton("work-pool", "ls", env=no_key).failed()
    assert "API key" in refused and "BATON_API_KEY" in refused
    wrong_key = {**project.env, "BATON_API_KEY": "baton_not-a-key"}
    assert "BATON_API_KEY" in project.baton("deployment", "ls", env=wrong_key).failed()
    no_url = {k: v for k, v in project.env.items() if k != "BATON_API_URL"}
    assert "BATON_API_URL is not set" in project.baton("deployment", "ls", env=no_url).failed()
    assert "flow-name/deployment-name" in project.baton("deployment", "run", "just-a-name").failed()
    assert "does not exist" in project.baton("deployment", "run", f"{project.flow}/nope").failed()


def test_flow_deploy_and_run_deployment_from_python(project: Project, pool: str) -> None:
    project.write_flow()
    made = project.python(
        f"""
        from flows.hello import say_hello
        from baton import run_deployment

        deployment = say_hello.deploy(
            "py", "{pool}", parameters={{"name": "Trillian"}}, cron="*/5 * * * *", tags=["py"]
        )
        print(deployment.id)
        run = run_deployment("{project.flow}/py", parameters={{"count": 2}}, timeout=0)
        print(run.id, run.state.type.value, run.parameters["name"], run.parameters["count"])
        """
    ).ok()
    deployment_id, run_line = made.stdout.split("\n")[:2]
    stored = project.stored("py")
    assert stored["id"] == deployment_id
    assert stored["entrypoint"] == "flows/hello.py:say_hello"
    assert stored["pull_steps"] == [
        {"kind": "set_working_directory", "directory": str(project.path.resolve())}
    ]
    assert stored["schedules"][0]["schedule"]["cron"] == "*/5 * * * *"
    assert stored["parameter_schema"]["required"] == ["name"]
    assert stored["description"] == "Greets someone, count times."
    run_id, state, name, count = run_line.split()
    assert (state, name, count) == ("SCHEDULED", "Trillian", "2")
    [run] = project.runs()
    assert run["id"] == run_id

    refused = project.python(
        f"""
        from baton import run_deployment
        from baton._transport import RequestRejected

        try:
            run_deployment("{project.flow}/py", parameters={{"count": "x"}}, timeout=0)
        except RequestRejected as exc:
            print(exc.status, exc.detail)
        """
    ).ok()
    assert refused.stdout.startswith("422 parameters.count")
    assert len(project.runs()) == 1


def _watching(project: Project, *args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """`baton deployment run ... --watch` started, and the run it created."""
    process = subprocess.Popen(
        [BATON, "deployment", "run", f"{project.flow}/prod", "--param", "name=Ford", "--watch", *args],
        env=project.env,
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while not (runs := project.runs()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run was not created"
        time.sleep(0.05)
    return process, runs[0]


def test_watch_follows_states_and_logs_until_completed(project: Project, pool: str) -> None:
    project.write_flow()
    project.write_config({"deployments": [project.deployment()]})
    project.baton("deploy").ok()
    process, run = _watching(project)

    # what a worker and the engine do, through the API
    def propose(state: dict[str, Any]) -> None:
        answer = project.http.post(f"/flow_runs/{run['id']}/set_state", json={"state": state})
        assert answer.json()["verdict"] == "ACCEPT", answer.text

    propose({"type": "PENDING"})
    propose({"type": "RUNNING"})
    logs = [{"flow_run_id": run["id"], "message": f"Hello, Ford #{i}"} for i in range(3)]
    assert project.http.post("/logs", json={"logs": logs}).status_code == 202
    propose({"type": "COMPLETED", "message": "all greeted"})

    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    states = [line.rsplit(" is ", 1)[-1] for line in lines if "| STATE" in line]
    assert states == ["Scheduled", "Pending", "Running", "Completed: all greeted"]
    assert [line.split(" - ")[-1] for line in lines if "| INFO" in line] == [
        f"Hello, Ford #{i}" for i in range(3)
    ]
    assert lines[-1] == f"Flow run '{run['name']}' ended Completed: all greeted"


def test_watch_exits_non_zero_when_the_run_does_not_complete(project: Project, pool: str) -> None:
    project.write_flow()
    project.write_config({"deployments": [project.deployment()]})
    project.baton("deploy").ok()
    process, run = _watching(project)
    project.baton("flow-run", "cancel", run["id"]).ok()
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 1, out + err
    assert out.splitlines()[-1].startswith(f"Flow run '{run['name']}' ended Cancelled")


def test_the_users_path_through_a_worker(project: Project, live_server: LiveServer) -> None:
    """work-pool create, deploy, worker start, deployment run --watch: Completed, with its logs;
    then run_deployment() waits for a run to end."""
    project.baton("work-pool", "create", project.pool, "--type", "process").ok()
    project.write_flow()
    project.write_config({"deployments": [project.deployment(parameters={"count": 2})]})
    project.baton("deploy").ok()
    worker_env = live_server.client_env(amqp=True, BATON_HOME=str(project.path / ".home"))
    worker = subprocess.Popen(
        [BATON, "worker", "start", "--pool", project.pool],
        env=worker_env,
        cwd=project.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        watched = project.baton(
            "deployment", "run", f"{project.flow}/prod", "--param", "name=Ford", "--watch"
        )
        waited = project.python(
            f"""
            from baton import run_deployment

            run = run_deployment("{project.flow}/prod", parameters={{"name": "Zaphod"}}, timeout=50)
            print(run.state.type.value)
            """
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        _, worker_log = worker.communicate(timeout=PROCESS_TIMEOUT)
    assert watched.returncode == 0, watched.stdout + watched.stderr + worker_log
    lines = watched.stdout.splitlines()
    states = [line.rsplit(" is ", 1)[-1].split(":")[0] for line in lines if "| STATE" in line]
    assert states == ["Scheduled", "Pending", "Running", "Completed"]
    assert any(line.endswith(" - Hello, Ford") for line in lines)
    assert lines[-1].endswith("ended Completed")
    assert waited.ok().stdout.strip() == "COMPLETED"  # run_deployment waited for the end
    runs = {r["parameters"]["name"]: (r["state"]["type"], r["parameters"]["count"]) for r in project.runs()}
    assert runs == {"Ford": ("COMPLETED", 2), "Zaphod": ("COMPLETED", 2)}


def test_run_deployment_inside_a_flow_is_linked_to_it(project: Project, pool: str) -> None:
    project.write_flow()
    made = project.python(
        f"""
        from baton import flow, get_run_context, run_deployment
        from flows.hello import say_hello

        say_hello.deploy("linked", "{pool}", parameters={{"name": "Zaphod"}})

        @flow
        def parent() -> None:
            child = run_deployment("{project.flow}/linked", timeout=0)
            print("ids", get_run_context().flow_run.id, child.id)

        parent()
        """
    ).ok()
    [line] = [line for line in made.stdout.splitlines() if line.startswith("ids ")]
    _, parent_id, child_id = line.split()
    child = project.get(f"/flow_runs/{child_id}")
    assert child["parent_flow_run_id"] == parent_id
    assert child["deployment_id"] == project.stored("linked")["id"]


def test_the_baton_yaml_example_in_deploy_help_deploys_every_section(project: Project, pool: str) -> None:
    """Issue 16, point 20: `baton deploy --help` documents baton.yaml with an example of every
    section; that example, as printed, is a baton.yaml the server takes."""
    shown = project.baton("deploy", "--help").ok().stdout.splitlines()
    start = next(i for i, line in enumerate(shown) if line.strip().startswith("name: my-project"))
    end = next(i for i in range(start, len(shown)) if not shown[i].strip())
    example = textwrap.dedent("\n".join(line.rstrip() for line in shown[start:end]))
    config = yaml.safe_load(example)
    assert list(config) == ["name", "definitions", "pull", "deployments"]
    (project.path / "baton.yaml").write_text(example.replace("name: local,", f"name: {pool},"))
    project.write_flow()

    project.baton("deploy").ok()
    stored = project.stored("prod")
    assert (stored["description"], stored["version"], stored["tags"]) == ("Greets", "1.2", ["team-a"])
    assert (stored["work_pool_name"], stored["job_variables"]) == (pool, {"env": {"X": "1"}})
    assert stored["pull_steps"] == []  # its own `pull: []` instead of the project's
    assert stored["retry_policy"] == {"retries": 3, "retry_delay_seconds": 10.0}
    assert (stored["timeout_seconds"], stored["log_prints"], stored["paused"]) == (600, True, False)
    assert [s["active"] for s in stored["schedules"]] == [True, False, True]
    assert len(stored["triggers"]) == 1
