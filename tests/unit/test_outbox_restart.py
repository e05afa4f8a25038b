"""The outbox's loops start again after any error (`_keep_running`), and only cancelling ends them."""

from __future__ import annotations

import asyncio
import logging

import pytest

from baton_server.broker.outbox import _keep_running


async def test_a_loop_that_raises_starts_again_until_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    third = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError(f"failure {calls}")
        third.set()
        await asyncio.Event().wait()  # healthy from now on

    caplog.set_level(logging.ERROR, logger="baton_server.broker.outbox")
    task = asyncio.create_task(_keep_running("test", flaky))
    await asyncio.wait_for(third.wait(), 30)
    assert calls == 3
    failures = [r for r in caplog.records if "outbox test loop failed" in r.getMessage()]
    assert [str(r.exc_info[1]) for r in failures if r.exc_info] == ["failure 1", "failure 2"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
