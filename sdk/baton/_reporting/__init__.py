"""Where runs report their states and logs: the reporters, and how one is chosen.

- `LocalReporter`: no server; nothing leaves the process (the console shows the runs).
- `RemoteReporter` over HTTP (`BATON_API_URL`) or AMQP (`BATON_BROKER_URL`, used by workers).

Both satisfy `baton._protocols.Reporter`, which says what the engine may expect of them.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from baton_schemas.envelopes import ProposeState
    from baton_schemas.runs import FlowRun, FlowRunCreate
    from baton_schemas.states import State, TransitionResult

    from .._protocols import Reporter
    from .._records import TaskRunRecord
    from .._settings import ClientSettings


def done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


_NO_ANSWER: Future[Any] = done(None)
_DELIVERED: Future[bool] = done(True)


class LocalReporter:
    """No server: nothing is sent anywhere and every decision is the engine's own."""

    ships_logs = False

    def create_flow_run(self, run: FlowRunCreate) -> Future[FlowRun | None]:
        return _NO_ANSWER

    def propose_state(self, proposal: ProposeState) -> Future[TransitionResult | None]:
        return _NO_ANSWER

    def report_task_run_state(self, task_run: TaskRunRecord, state: State, version: int) -> None:
        pass

    def emit_log(
        self,
        flow_run_id: UUID,
        task_run_id: UUID | None,
        name: str,
        level: int,
        message: str,
        created: float,
    ) -> None:
        pass

    def track_flow_run(self, flow_run_id: UUID) -> None:
        pass

    def untrack_flow_run(self, flow_run_id: UUID) -> None:
        pass

    def cancel_requested(self, flow_run_id: UUID) -> bool:
        return False

    def flush(self, timeout: float) -> Future[bool]:
        return _DELIVERED

    def close(self, timeout: float) -> None:
        pass


def make_reporter(settings: ClientSettings) -> Reporter:
    """The reporter the settings ask for: AMQP if a broker URL is set, else HTTP if an API URL
    is set, else local. Connections are opened lazily, on the reporter's own thread."""
    if settings.broker_url or settings.api_url:
        from ._remote import RemoteReporter, ReporterConfig

        config = ReporterConfig.from_settings(settings)
    if settings.broker_url:
        url, timeout = settings.broker_url, settings.request_timeout

        async def connect_amqp() -> Any:
            from .._transport.amqp import AmqpTracker

            return await AmqpTracker.connect(url, connect_timeout=timeout, rpc_timeout=timeout)

        return RemoteReporter(connect_amqp, config, name="amqp")
    if settings.api_url:
        api_url, api_key, timeout = settings.api_url, settings.api_key, settings.request_timeout

        async def connect_http() -> Any:
            from .._transport.http import BatonClient

            return BatonClient(api_url, api_key, timeout=timeout)

        return RemoteReporter(connect_http, config, name="http")
    return LocalReporter()


__all__ = ["LocalReporter", "make_reporter"]
