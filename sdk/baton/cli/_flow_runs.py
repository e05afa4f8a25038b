"""`baton flow-run ...`: list, inspect, follow and cancel flow runs through the HTTP API.

The server is `BATON_API_URL` with the key `BATON_API_KEY` (or `$BATON_HOME/profile.env`).
Failures are one line on stderr and exit code 1: unreachable server, refused key, unknown run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer
from rich.table import Table
from rich.text import Text

from . import _api
from ._api import state_text as _state_text
from ._watch import LogPrinter, last_line, report_end, when_ms

if TYPE_CHECKING:
    from baton_schemas.runs import FlowRun, TaskRun


app = typer.Typer(no_args_is_help=True, help="Inspect, follow, cancel, retry, suspend and resume flow runs.")

RunId = Annotated[
    str,
    typer.Argument(
        metavar="RUN", help="The flow run: its id, the beginning of its id, or its name.", show_default=False
    ),
]

# --- formatting ---------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "-"
    seconds = ((end or datetime.now(UTC)) - start).total_seconds()
    if seconds < 60:
        text = f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    else:
        text = f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return text if end else f"{text}+"


class _StateFilter:
    """`--state` values: state types (completed) or named states (TimedOut). The server filters
    by type; named states are then kept by name here."""

    def __init__(self, values: list[str]) -> None:
        from baton_schemas.states import NAMED_STATES, StateType

        self.types: set[str] = set()  # asked of the server
        self.whole_types: set[str] = set()  # every state of these types is wanted
        self.names: set[str] = set()
        by_name = {name.lower(): (name, kind) for name, kind in NAMED_STATES.items()}
        for value in values:
            key = value.strip().lower()
            if key.upper() in StateType.__members__:
                self.types.add(key.upper())
                self.whole_types.add(key.upper())
            elif key in by_name:
                name, kind = by_name[key]
                self.types.add(kind.value)
                self.names.add(name)
            else:
                choices = ", ".join(t.value.lower() for t in StateType)
                raise typer.BadParameter(
                    f"unknown state {value!r}; use a type ({choices}) or a name ({', '.join(NAMED_STATES)})",
                    param_hint="--state",
                )

    @property
    def exact(self) -> bool:
        return not self.names

    def keeps(self, run: FlowRun) -> bool:
        return self.exact or run.state.type.value in self.whole_types or run.state.name in self.names


# --- commands -----------------------------------------------------------------------------------


@app.command("ls")
def list_runs(
    state: Annotated[
        list[str] | None,
        typer.Option("--state", "-s", help="Only runs in this state (type or name); repeatable."),
    ] = None,
    flow: Annotated[str | None, typer.Option("--flow", "-f", help="Only runs of this flow.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only runs with this tag; repeatable.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs at most.")] = 20,
) -> None:
    """The most recent flow runs, newest first."""
    wanted = _StateFilter(state or [])
    runs: list[FlowRun] = []
    with _api.client() as client:
        cursor: str | None = None
        while len(runs) < limit:
            page = client.read_flow_runs(
                limit=min(500, limit - len(runs)) if wanted.exact else 500,
                cursor=cursor,
                state=sorted(wanted.types) or None,
                flow_name=flow,
                tag=tag or None,
            )
            runs += [run for run in page.items if wanted.keeps(run)]
            cursor = page.next_cursor
            if cursor is None:
                break
    runs = runs[:limit]
    console = _api.console()
    if not runs:
        console.print("No flow runs.")
        return
    table = _api.table("ID", "Name", "Flow", "State", "Start", "Duration")
    for run in runs:
        table.add_row(
            str(run.id),
            run.name,
            run.flow_name,
            _state_text(run.state),
            _when(run.start_time),
            _duration(run.start_time, run.end_time),
        )
    console.print(table)


def _pause_text(key: str, timeout: datetime | None, schema: dict[str, Any] | None) -> str:
    """`pause-1, waits for approved (required), note; times out 2026-12-04 21:00:00`."""
    if schema is None:
        waits = "waits for no input"
    else:
        required = set(schema.get("required") or ())
        fields = [
            f"{name} (required)" if name in required else name for name in schema.get("properties") or {}
        ]
        waits = f"waits for {', '.join(fields) or 'input'}"
    return f"{key}, {waits}; " + (f"times out {_when(timeout)}" if timeout else "no timeout")


@app.command("inspect")
def inspect_run(run_ref: RunId) -> None:
    """A flow run: state, parameters, times, state history, task runs."""
    from baton_schemas.pauses import pause_details, schema_key

    with _api.client() as client:
        run = _api.find_flow_run(client, run_ref)
        history = client.read_flow_run_states(run.id)
        task_runs = _api.all_task_runs(client, run.id)
        pause = pause_details(run.state)
        schema = client.read_flow_run_input(run.id, schema_key(pause.key)) if pause else None
    console = _api.console()
    header = Text.assemble((run.name, "bold"), f"  ({run.id})")
    console.print(header)
    facts: list[tuple[str, Any]] = [
        ("Flow", run.flow_name),
        ("State", Text.assemble(_state_text(run.state), f"  {run.state.message or ''}".rstrip())),
        ("Run count", str(run.run_count)),
        ("Retries", f"{run.retry_policy.retries} (delay {run.retry_policy.retry_delay_seconds:g}s)"),
        ("Parameters", _json(run.parameters)),
        ("Tags", ", ".join(run.tags) or "-"),
        ("Created", _when(run.created)),
        ("Started", _when(run.start_time)),
        ("Ended", _when(run.end_time)),
        ("Duration", _duration(run.start_time, run.end_time)),
    ]
    if run.parent_flow_run_id:
        facts.append(("Parent flow run", str(run.parent_flow_run_id)))
    if run.parent_task_run_id:
        facts.append(("Parent task run", str(run.parent_task_run_id)))
    if run.deployment_id:
        facts.append(("Deployment", str(run.deployment_id)))
    if run.worker_id:
        facts.append(("Worker", run.worker_id))
    if pause is not None:
        facts.append(("Pause", _pause_text(pause.key, pause.timeout, schema.value if schema else None)))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in facts:
        grid.add_row(label, value)
    console.print(grid)

    console.print(Text("\nState history", style="bold"))
    states = _api.table("#", "State", "Time", "Message")
    for index, state in enumerate(history, 1):
        states.add_row(str(index), _state_text(state), when_ms(state.timestamp), last_line(state.message))
    console.print(states)

    console.print(Text(f"\nTask runs ({len(task_runs)})", style="bold"))
    if not task_runs:
        console.print("-")
        return
    names = {task_run.id: task_run.name for task_run in task_runs}
    tasks = _api.table("Name", "State", "Runs", "Start", "Duration", "Upstream")
    for task_run in task_runs:
        tasks.add_row(
            task_run.name,
            _state_text(task_run.state),
            str(task_run.run_count),
            _when(task_run.start_time),
            _duration(task_run.start_time, task_run.end_time),
            _upstream(task_run, names),
        )
    console.print(tasks)


def _upstream(task_run: TaskRun, names: dict[UUID, str]) -> str:
    parts = []
    for argument, inputs in task_run.task_inputs.items():
        sources = [names.get(item.id, str(item.id)) for item in inputs if item.id is not None]
        if sources:
            parts.append(f"{argument} <- {', '.join(sources)}")
    return "; ".join(parts) or "-"


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@app.command("logs")
def logs(
    run_ref: RunId,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new logs until the run ends, then its final state."
        ),
    ] = False,
) -> None:
    """A flow run's logs (with its task runs'), oldest first."""
    with _api.client() as client:
        flow_run = _api.find_flow_run(client, run_ref)
        run_id = flow_run.id
        printer = LogPrinter(client, flow_run)
        if follow:  # Ctrl-C ends it (exit 130)
            for record in client.stream_logs(run_id):
                printer.print(record)
            ended = client.read_flow_run(run_id)
            report_end(ended)  # as `--watch` ends: the final state, exit 1 unless Completed
            return
        cursor: str | None = None
        while True:
            page = client.read_logs(run_id, cursor=cursor, limit=5000)
            for record in page.items:
                printer.print(record)
            if not page.items or page.next_cursor in (None, cursor):
                break
            cursor = page.next_cursor


@app.command("cancel")
def cancel(run_ref: RunId) -> None:
    """Cancel a flow run.

    One that has not started is Cancelled at once; a running one goes Cancelling until its
    process stops. Exits 1 if the run had already ended otherwise."""
    from baton_schemas.states import StateType, Verdict

    with _api.client() as client:
        run_id = _api.find_flow_run(client, run_ref).id
        result = client.cancel_flow_run(run_id)
        run = client.read_flow_run(run_id)
    state = result.state or run.state
    line = Text.assemble(f"Flow run {run.name!r} ({run.id}): ", _state_text(state))
    if result.verdict is not Verdict.ACCEPT and result.reason:
        line.append(f" ({result.reason})")
    _api.console().print(line, soft_wrap=True)
    if state.type not in (StateType.CANCELLING, StateType.CANCELLED):
        raise typer.Exit(1)


@app.command("retry")
def retry(run_ref: RunId) -> None:
    """Run an ended deployment run again: it goes back to Scheduled and a worker of its pool
    takes it. Exits 1 for a run still going, or one that is not a deployment's."""
    with _api.client() as client:
        run = _api.find_flow_run(client, run_ref)
        result = client.retry_flow_run(run.id)
    state = result.state or run.state
    _api.console().print(
        Text.assemble(f"Flow run {run.name!r} ({run.id}): ", _state_text(state), " (retried)"), soft_wrap=True
    )


@app.command("delete")
def delete(
    run_ref: RunId, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False
) -> None:
    """Delete an ended flow run, with its states, task runs and logs (an admin key)."""
    with _api.client() as client:
        run = _api.find_flow_run(client, run_ref)
        if not yes:
            typer.confirm(f"Delete flow run {run.name!r} ({run.id})?", abort=True)
        client.delete_flow_run(run.id)
    _api.console().print(f"Deleted flow run {run.name!r} ({run.id}).")


@app.command("suspend")
def suspend(
    run_ref: RunId,
    reason: Annotated[str | None, typer.Option(help="Why, kept in the run's state message.")] = None,
) -> None:
    """Suspend a deployment's flow run: one not started yet is held, a running one's worker
    stops its process. `baton flow-run resume` starts it again through a worker. Exits 1 for a
    run that is over, paused already, or not a deployment's."""
    with _api.client() as client:
        run = _api.find_flow_run(client, run_ref)
        result = client.suspend_flow_run(run.id, reason=reason)
    if result.verdict.value != "ACCEPT":
        _api.fail(f"flow run {run.name!r} was not suspended: {result.reason or result.verdict.value}")
    state = result.state or run.state
    _api.console().print(
        Text.assemble(f"Flow run {run.name!r} ({run.id}): ", _state_text(state), " (suspended)"),
        soft_wrap=True,
    )


@app.command("resume")
def resume(
    run_ref: RunId,
    run_input: Annotated[
        str | None,
        typer.Option(
            "--input",
            metavar="JSON",
            help="The input the pause waits for, as a JSON object: '{\"approved\": true}'.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Resume a paused flow run. A run whose process waits goes on; a suspended one is started
    again by a worker. Exits 1 for a run that is not paused, or input that does not fit."""
    import orjson

    value: Any = None
    if run_input is not None:
        try:
            value = orjson.loads(run_input)
        except orjson.JSONDecodeError as exc:
            _api.fail(f"--input is not JSON: {exc}")
        if not isinstance(value, dict):
            _api.fail("--input must be a JSON object, such as '{\"approved\": true}'")
    with _api.client() as client:
        run = _api.find_flow_run(client, run_ref)
        result = client.resume_flow_run(run.id, value)
    state = result.state or run.state
    _api.console().print(
        Text.assemble(f"Flow run {run.name!r} ({run.id}): ", _state_text(state), " (resumed)"), soft_wrap=True
    )
