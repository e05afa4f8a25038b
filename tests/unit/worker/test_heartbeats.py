"""What a worker's heartbeat names: the runs it runs and the runs it is still claiming (their
leases would otherwise lapse while a claim's answer is on its way, and the reaper crash them)."""

from __future__ import annotations

import uuid
from typing import Any

from baton._settings import ClientSettings
from baton._worker._settings import WorkerSettings
from baton._worker._worker import Worker
from baton_schemas.envelopes import Heartbeat


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, message: Any, *, timeout: float | None = None) -> None:
        self.sent.append(message)


async def test_a_heartbeat_names_running_and_claiming_runs() -> None:
    worker = Worker(WorkerSettings(pool="p", limit=4), ClientSettings(broker_url="amqp://unused/"))
    recorder = _Recorder()
    worker.tracker = recorder  # type: ignore[assignment]
    running, claiming = uuid.uuid4(), uuid.uuid4()
    worker.runs[running] = object()  # type: ignore[assignment]
    worker._claims[claiming] = None

    await worker._heartbeat()

    (beat,) = recorder.sent
    assert isinstance(beat, Heartbeat)
    assert set(beat.flow_run_ids) == {running, claiming}
    assert beat.worker is not None and beat.worker.running == 1
