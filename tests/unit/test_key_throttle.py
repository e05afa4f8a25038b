"""Failed key checks are throttled per digest bucket (GCRA): pure arithmetic, any clock."""

from __future__ import annotations

from baton_server.api.throttle import FailureThrottle


def test_a_burst_is_answered_at_once_then_answers_wait_their_turn() -> None:
    throttle = FailureThrottle(rate=10, burst=5, max_delay=2)
    waits = [round(throttle.delay("a" + "0" * 63, 0.0), 6) for _ in range(10)]
    assert waits == [0, 0, 0, 0, 0, 0, 0.1, 0.2, 0.3, 0.4]  # the burst, then one per 1/rate


def test_buckets_are_apart_so_one_noisy_key_slows_only_its_own() -> None:
    throttle = FailureThrottle(rate=10, burst=0, max_delay=2)
    for _ in range(10):
        throttle.delay("a" * 64, 0.0)
    assert throttle.delay("a" * 64, 0.0) > 0
    assert throttle.delay("b" * 64, 0.0) == 0


def test_a_flood_waits_at_most_max_delay_and_the_bucket_recovers_when_it_stops() -> None:
    throttle = FailureThrottle(rate=10, burst=0, max_delay=2)
    waits = [throttle.delay("c" * 64, 0.0) for _ in range(10_000)]
    assert max(waits) == 2 and waits[-1] == 2
    assert throttle.delay("c" * 64, 2.1) == 0, "answered at once again once the flood is over"


def test_the_rate_recovers_with_time() -> None:
    throttle = FailureThrottle(rate=10, burst=0, max_delay=2)
    assert throttle.delay("d" * 64, 0.0) == 0
    assert throttle.delay("d" * 64, 0.0) == 0.1
    assert throttle.delay("d" * 64, 1.0) == 0
