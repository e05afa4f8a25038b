"""Retry delays of tasks and flows: a number, a list (one per retry) or a callable making a list."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeAlias

RetryDelay: TypeAlias = float | int | Sequence[float | int] | Callable[[int], Sequence[float]]


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """`retry_delay_seconds=exponential_backoff(backoff_factor=2)`: delays 2, 4, 8, ... seconds."""
    if backoff_factor < 0:
        raise ValueError("backoff_factor must be >= 0")

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**attempt for attempt in range(retries)]

    return delays


def resolve_delays(retry_delay_seconds: RetryDelay | None, retries: int) -> list[float]:
    """The delay before each retry, as a list (an empty list means no delay)."""
    if retry_delay_seconds is None:
        return []
    if callable(retry_delay_seconds):
        retry_delay_seconds = retry_delay_seconds(retries)
    if isinstance(retry_delay_seconds, int | float):
        delays = [float(retry_delay_seconds)]
    else:
        delays = [float(delay) for delay in retry_delay_seconds]
    if any(delay < 0 for delay in delays):
        raise ValueError("retry delays must be >= 0")
    return delays


def delay_for_retry(delays: Sequence[float], retry_number: int, jitter_factor: float | None = None) -> float:
    """Delay before retry `retry_number` (1-based); past the list's end, its last item.

    With `jitter_factor` j, the delay is drawn uniformly from [d * (1 - j), d * (1 + j)]
    (never below 0), so many retrying runs don't hit a dependency at the same instant.
    """
    if not delays:
        return 0.0
    delay = delays[min(retry_number, len(delays)) - 1]
    if jitter_factor:
        delay = max(0.0, delay * (1 + random.uniform(-jitter_factor, jitter_factor)))
    return delay
