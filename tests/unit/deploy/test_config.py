"""baton.yaml: the forms it accepts, what it becomes, and how its mistakes are reported."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from baton._deploy._errors import DeployError
from baton._deploy.config import find_config, load_config
from baton._deploy.deployer import plan
from baton_schemas.deployments import CollisionStrategy, GitClone, PipInstallRequirements, RunShellScript

HELLO = '''
from baton import flow


@flow(name="say-hello", version="7")
def say_hello(name: str, count: int = 1) -> str:
    """Greets."""
    return name * count
'''


def write(folder: Path, text: str) -> Path:
    path = folder / "baton.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(folder: Path, text: str) -> str:
    with pytest.raises(DeployError) as caught:
        load_config(write(folder, text))
    return str(caught.value)


def test_full_config_maps_to_deployment_create(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text(HELLO)
    path = write(
        tmp_path,
        """
        pull:
          - git_clone: {repository: https://example.com/x.git, branch: main}
          - pip_install_requirements:
        deployments:
          - name: prod
            entrypoint: flows/hello.py:say_hello
            parameters: {name: world}
            tags: [a, b]
            work_pool: {name: local, queue: high, job_variables: {env: {X: "1"}}}
            concurrency_limit: 2
            retry_policy: {retries: 3, retry_delay_seconds: 10}
            schedules:
              - cron: "0 * * * *"
                timezone: Europe/Paris
                active: false
              - interval: 600
                parameters: {count: 2}
              - rrule: "FREQ=DAILY"
              - schedule: {kind: interval, interval_seconds: 5}
            triggers:
              - match: {baton.resource.id: "x.*"}
                expect: [etl.done]
          - name: dev
            entrypoint: flows/hello.py:say_hello
            description: mine
            enforce_parameter_schema: false
            work_pool: {name: local}
            pull:
              - run_shell_script: make
            concurrency_limit: {limit: 1, collision_strategy: cancel-new}
        """,
    )
    [prod, dev] = [p.request for p in plan(load_config(path), tmp_path)]

    assert (prod.flow_name, prod.name, prod.entrypoint) == ("say-hello", "prod", "flows/hello.py:say_hello")
    assert (prod.description, prod.version) == ("Greets.", "7")  # from the flow when unset
    assert (prod.work_pool_name, prod.work_queue_name, prod.job_variables) == (
        "local",
        "high",
        {"env": {"X": "1"}},
    )
    assert prod.parameters == {"name": "world"} and prod.tags == ["a", "b"]
    assert prod.pull_steps == [
        GitClone(repository="https://example.com/x.git", ref="main"),
        PipInstallRequirements(),
    ]
    assert prod.concurrency is not None and prod.concurrency.limit == 2
    assert prod.concurrency.collision_strategy is CollisionStrategy.ENQUEUE
    assert (prod.retry_policy.retries, prod.retry_policy.retry_delay_seconds) == (3, 10)
    kinds = [(s.schedule.kind, s.active) for s in prod.schedules]
    assert kinds == [("cron", False), ("interval", True), ("rrule", True), ("interval", True)]
    assert prod.schedules[0].schedule.timezone == "Europe/Paris"
    assert prod.schedules[1].parameters == {"count": 2}
    assert prod.triggers[0].expect == ["etl.done"]
    assert prod.parameter_schema["required"] == ["name"]

    assert dev.pull_steps == [RunShellScript(script="make")]  # its own steps replace the project's
    assert dev.description == "mine" and dev.enforce_parameter_schema is False
    assert dev.concurrency is not None and dev.concurrency.collision_strategy is CollisionStrategy.CANCEL_NEW


def test_default_pull_step_is_the_project_folder(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(HELLO)
    path = write(tmp_path, "deployments: [{name: x, entrypoint: hello.py:say_hello, work_pool: {name: p}}]")
    [planned] = plan(load_config(path), tmp_path)
    assert [s.model_dump() for s in planned.request.pull_steps] == [
        {"kind": "set_working_directory", "directory": str(tmp_path.resolve())}
    ]


def test_errors_name_the_deployment_and_the_field(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        """
        deployments:
          - name: prod
            entrypoint: flows/hello.py:say_hello
            work_pool: {queue: high}
            tagz: [a]
            pull:
              - git_clone: {ref: main}
              - unzip: {}
            schedules:
              - cron: "0 * * * *"
                timezon: UTC
              - every: 3
            concurrency_limit: {limit: 0, collision_strategy: drop}
          - entrypoint: x.py:f
            work_pool: {name: a}
        """,
    )
    assert message.startswith("baton.yaml: ")
    problems = message.removeprefix("baton.yaml: ").split("; ")
    assert problems == [
        "deployments[0] (prod): work_pool.name: Field required",
        "deployments[0] (prod): pull[0].repository: Field required",
        "deployments[0] (prod): pull[1]: unknown pull step 'unzip': use one of git_clone, "
        "set_working_directory, pip_install_requirements, run_shell_script",
        "deployments[0] (prod): concurrency_limit.limit: Input should be greater than or equal to 1",
        "deployments[0] (prod): concurrency_limit.collision_strategy: "
        "Input should be 'enqueue' or 'cancel-new'",
        "deployments[0] (prod): schedules[0].timezon: unknown field",
        "deployments[0] (prod): schedules[1]: a schedule needs exactly one of 'cron', 'interval' or 'rrule'",
        "deployments[0] (prod): tagz: unknown field",
        "deployments[1]: name: Field required",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deployments: [a\n", "baton.yaml line 2, column 1: not valid YAML"),
        ("- just a list\n", "expected a mapping with a 'deployments:' list"),
        ("deployments: []\n", "deployments: List should have at least 1 item"),
        ("name: x\n", "deployments: Field required"),
        (
            "deployments: [{name: a, entrypoint: b.py:c, work_pool: {name: p}, triggers: [{threshold: 0}]}]",
            "deployments[0] (a): triggers[0].threshold: Input should be greater than or equal to 1",
        ),
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_entrypoint_and_parameter_errors_come_from_plan(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(HELLO)
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    cases = {
        "missing.py:say_hello": "missing.py",
        "broken.py:say_hello": "not_a_module_anywhere",
        "hello.py:nope": "'nope'",
    }
    for entrypoint, expected in cases.items():
        path = write(
            tmp_path, f"deployments: [{{name: x, entrypoint: '{entrypoint}', work_pool: {{name: p}}}}]"
        )
        with pytest.raises(DeployError) as caught:
            plan(load_config(path), tmp_path)
        assert str(caught.value).startswith("deployments[0] (x): ") and expected in str(caught.value)

    path = write(
        tmp_path,
        "deployments: [{name: x, entrypoint: hello.py:say_hello, work_pool: {name: p}, "
        "parameters: {count: many, colour: red}}]",
    )
    with pytest.raises(DeployError) as caught:
        plan(load_config(path), tmp_path)
    assert str(caught.value) == (
        "deployments[0] (x): parameters: 'colour': not a parameter of the flow; "
        "count: Input should be a valid integer, unable to parse string as an integer"
    )


def test_find_config(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match=r"baton\.yaml does not exist"):
        find_config(tmp_path)
    path = write(tmp_path, "deployments: []")
    assert find_config(tmp_path) == path == find_config(path)


FLOW_WITH_OPTIONS = '''
from baton import flow


@flow(name="careful", version="3", retries=2, retry_delay_seconds=5, timeout_seconds=60, log_prints=True)
def careful() -> None:
    """Tries hard."""
'''


def test_the_flows_own_options_are_the_deployments_defaults_and_baton_yaml_overrides_them(
    tmp_path: Path,
) -> None:
    (tmp_path / "careful.py").write_text(FLOW_WITH_OPTIONS)
    path = write(
        tmp_path,
        """
        deployments:
          - {name: as-coded, entrypoint: careful.py:careful, work_pool: {name: p}}
          - name: overridden
            entrypoint: careful.py:careful
            work_pool: {name: p}
            version: "4"
            description: mine
            retry_policy: {retries: 0}
            timeout_seconds: 1.5
            log_prints: false
        """,
    )
    [coded, overridden] = [p.request for p in plan(load_config(path), tmp_path)]

    assert (coded.retry_policy.retries, coded.retry_policy.retry_delay_seconds) == (2, 5)
    assert (coded.timeout_seconds, coded.log_prints) == (60, True)
    assert (coded.version, coded.description) == ("3", "Tries hard.")
    assert (overridden.retry_policy.retries, overridden.retry_policy.retry_delay_seconds) == (0, 0)
    assert (overridden.timeout_seconds, overridden.log_prints) == (1.5, False)
    assert (overridden.version, overridden.description) == ("4", "mine")


def test_a_timeout_in_baton_yaml_must_be_positive(tmp_path: Path) -> None:
    message = error_of(
        tmp_path,
        "deployments: [{name: x, entrypoint: a.py:f, work_pool: {name: p}, timeout_seconds: 0}]",
    )
    assert "deployments[0] (x): timeout_seconds: Input should be greater than 0" in message


def test_the_example_in_baton_deploy_help_is_a_valid_baton_yaml(tmp_path: Path) -> None:
    from baton.cli._deploy import deploy

    doc = deploy.__doc__ or ""
    example = doc.split("```yaml", 1)[1].split("```", 1)[0]
    config = load_config(write(tmp_path, textwrap.dedent(example)))
    [prod] = config.deployments
    assert prod.tags == ["team-a"] and prod.timeout_seconds == 600 and prod.log_prints is True
    assert len(prod.schedules or []) == 3 and prod.retry_policy is not None
    assert [step.kind for step in config.pull or []] == [
        "git_clone",
        "set_working_directory",
        "pip_install_requirements",
        "run_shell_script",
    ]
