"""`concurrency()`, `rate_limit()` and tag limits, the parts that need no server: refusing what
can never work, and who needs slots at all. (Against a server: tests/e2e/concurrency.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import pytest

from baton import arate_limit, concurrency, rate_limit
from baton._concurrency._tags import MAX_NAMES, tag_slots
from baton._deployments import NotConfigured
from baton._settings import ClientSettings
from baton_schemas.limits import NAME_MAX


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BATON_API_URL", raising=False)
    monkeypatch.setenv("BATON_HOME", str(tmp_path))  # no profile either


def test_without_a_server_taking_slots_says_what_to_set(no_server: None) -> None:
    with pytest.raises(NotConfigured, match="BATON_API_URL"), concurrency("db"):
        pass
    with pytest.raises(NotConfigured, match="BATON_API_URL"):
        rate_limit("api")

    async def main() -> None:
        with pytest.raises(NotConfigured):
            async with concurrency("db"):
                pass
        with pytest.raises(NotConfigured):
            await arate_limit("api")

    asyncio.run(main())


def test_impossible_requests_are_refused_before_asking(no_server: None) -> None:
    with pytest.raises(ValueError, match="occupy must be at least 1"):
        concurrency("db", occupy=0)
    with pytest.raises(ValueError, match="at least one name"):
        concurrency([])
    with pytest.raises(ValueError, match="occupy must be at least 1"):
        rate_limit("api", occupy=0)
    for seconds in (0, 3601):
        with pytest.raises(ValueError, match="lease_duration must be more than 0 and at most 3600"):
            concurrency("db", lease_duration=seconds)


def test_only_task_runs_with_tags_and_a_server_ask_for_tag_slots() -> None:
    server = ClientSettings(api_url="http://127.0.0.1:1/api")
    assert tag_slots([], uuid4(), server) is None
    assert tag_slots(["gpu"], uuid4(), ClientSettings(api_url=None)) is None
    slots = tag_slots(["gpu", "gpu", "x" * NAME_MAX, *(f"t{i}" for i in range(200))], uuid4(), server)
    assert slots is not None
    names = slots._names
    assert names[0] == "tag:gpu" and names.count("tag:gpu") == 1  # each tag once
    assert all(len(name) <= NAME_MAX for name in names)  # a tag too long for a limit's name has none
    assert len(names) == MAX_NAMES


def test_tags_known_to_have_no_limit_ask_nothing_for_a_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    from baton._concurrency import _tags
    from baton_schemas.concurrency import SlotsAcquired

    monkeypatch.setattr(_tags, "_no_limit", {})
    now = [100.0]
    monkeypatch.setattr("baton._concurrency._tags.time.monotonic", lambda: now[0])
    assert not _tags._known_unlimited(["tag:a"])
    _tags._learn(SlotsAcquired(missing=["tag:a", "tag:b"], limits=[]))
    assert _tags._known_unlimited(["tag:a", "tag:b"]) and not _tags._known_unlimited(["tag:a", "tag:c"])
    now[0] += _tags.NO_LIMIT_SECONDS + 0.1
    assert not _tags._known_unlimited(["tag:a"])  # asked again: a limit may exist now
    _tags._learn(SlotsAcquired(missing=["tag:a"], limits=[]))
    _tags._learn(SlotsAcquired(missing=[], limits=["tag:a"]))  # created since
    assert not _tags._known_unlimited(["tag:a"])
