"""Failed key checks are rate-limited by the key's digest prefix, not by the client's address.

Behind a proxy, or on one machine, every client has the same address: limiting by address
would let one noisy client lock out everyone. The digest of a wrong key says nothing about who
sent it, but it spreads keys evenly over buckets: a client that keeps sending one wrong key
uses up one bucket; a flood of random keys uses up all of them, and so is throttled as a whole.

Each bucket (the digest's first hex digit: 16 of them) answers `rate` failures a second at once,
after a burst of `burst`; past that a failure's answer waits its turn, at most `max_delay`.
Valid keys never pass through here, so they are never delayed. A flood that waits for each
answer before sending again (as HTTP clients do) is slowed to at most the buckets' rates, or
its connections / `max_delay`, so it cannot take the CPU that valid requests need.

The arithmetic is GCRA (the generic cell rate algorithm): one "theoretical arrival time" per
bucket, no timers, pure and testable with any clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUCKET_DIGITS = 1  # hex digits of the digest: 16 buckets


@dataclass
class FailureThrottle:
    rate: float = 20.0  # failures per second per bucket, answered at once
    burst: int = 20
    max_delay: float = 2.0
    _tat: dict[str, float] = field(default_factory=dict)  # per bucket: theoretical arrival time

    def delay(self, digest: str, now: float) -> float:
        """How long the answer to this failed check waits (0: at once). Counts the failure."""
        bucket = digest[:BUCKET_DIGITS]
        interval = 1.0 / self.rate
        tolerance = interval * self.burst
        tat = max(self._tat.get(bucket, now), now)
        wait = max(0.0, tat - now - tolerance)
        # a flood does not push the bucket's time ever further out: past max_delay, it waits the
        # most and no longer counts (the bucket recovers as soon as the flood stops)
        if wait < self.max_delay:
            self._tat[bucket] = tat + interval
        return min(wait, self.max_delay)
