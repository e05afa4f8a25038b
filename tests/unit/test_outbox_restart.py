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


async def test_the_restarts_back_off_jittered_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The waits between restarts grow, are jittered, and never pass `_RESTART_BACKOFF` (the
    waits are recorded and not slept: a unit test of the policy)."""
    from baton_server.broker import outbox

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(seconds: float, *args: object) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    failures = 20  # the last 14 waits drawn up to the cap: all under 0.8 s once in 370,000 runs
    done = asyncio.Event()

    async def failing() -> None:
        if len(waits) < failures:
            raise RuntimeError("again")
        done.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(_keep_running("test", failing))
    await asyncio.wait_for(done.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(waits) == failures
    assert all(0 <= wait <= outbox._RESTART_BACKOFF for wait in waits)
    assert len(set(waits)) == failures, "jittered: no two waits alike"
    assert max(waits[6:]) > 4 * max(waits[:2]), "the waits grow"
