"""The scheduler's parsed-schedule cache is bounded and keeps what is used (pure)."""

from __future__ import annotations

from baton_server.scheduler import horizon


def test_the_least_recently_used_schedule_goes_first() -> None:
    horizon._PARSED.clear()
    bound = horizon._PARSED_MAX
    entries = {
        f"k{i}": {"schedule": {"kind": "interval", "interval_seconds": 60 + i}} for i in range(bound + 1)
    }
    first = horizon._parsed("k0", entries["k0"])
    for i in range(1, bound):
        horizon._parsed(f"k{i}", entries[f"k{i}"])
    assert horizon._parsed("k0", entries["k0"]) is first  # a hit: now the most recent
    horizon._parsed(f"k{bound}", entries[f"k{bound}"])  # full: k1 goes, not k0
    assert len(horizon._PARSED) == bound
    assert "k0" in horizon._PARSED and "k1" not in horizon._PARSED
    horizon._PARSED.clear()
