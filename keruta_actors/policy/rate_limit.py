"""Token buckets for the rate limiter stage (SPEC §7): global, per task, per source.

A limit delays records, it never drops them (SPEC §6): callers ask how many of
their records may pass now (`grant`) and, for the rest, when to ask again
(`retry_at` / `time_until`). A rate of 0 means unlimited.

Tokens are floats. Refilling with integer arithmetic (`int(elapsed * rate)`
while resetting the refill clock) throws away the fractional token at every
call, so frequent callers get far less than the configured rate; here only
whole tokens are handed out and the fraction stays in the bucket.
"""

from __future__ import annotations

import math

# Float refills can land a hair below a whole token at the instant
# `time_until` promised it (0.7 + 0.1 - 0.7 < 0.1). Counting that hair as the
# token spares a caller woken at the promised time a refusal. Larger rounding
# (an epoch-sized `now` has a ulp of ~0.2 us) can still cost one extra
# wakeup, never a busy loop: `time_until` is 0 exactly when `grant` gives.
_EPSILON = 1e-9


class TokenBucket:
    """`rate` tokens per second, at most `capacity` stored; starts full."""

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        if rate < 0:
            raise ValueError(f"rate must be >= 0, got {rate}")
        if rate > 0 and capacity < 1:
            # Tokens are granted whole: a bucket that cannot hold one never grants.
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._last = now

    @property
    def unlimited(self) -> bool:
        return self.rate == 0

    def _refill(self, now: float) -> None:
        # A clock that steps back refills nothing; it must not mint tokens later.
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def peek(self, wanted: int, now: float) -> int:
        """How many of `wanted` tokens `grant` would hand out now, taking none."""
        if self.unlimited:
            return wanted
        self._refill(now)
        return max(0, min(wanted, math.floor(self._tokens + _EPSILON)))

    def grant(self, wanted: int, now: float) -> int:
        """Take and return up to `wanted` whole tokens; never more than are there."""
        granted = self.peek(wanted, now)
        if not self.unlimited:
            self._tokens = max(0.0, self._tokens - granted)
        return granted

    def time_until(self, n: int, now: float) -> float:
        """Seconds until `n` tokens are there (0 if they are now). More than
        `capacity` can never be there at once: then, until the bucket is full."""
        if self.unlimited:
            return 0.0
        self._refill(now)
        missing = min(n, self.capacity) - self._tokens
        if missing <= _EPSILON:
            return 0.0
        return missing / self.rate


class HierarchicalLimiter:
    """One global bucket, one per task id, one per (task id, source).

    A record passes only if every level has a token for it, and then it takes
    one from each. `grant` first asks every level how much it could give and
    takes only the smallest answer from all three, so a level that refuses
    never costs the others tokens (the naive chain of `Allow()` calls spends
    the global token before the per-source check fails).

    Burst: each bucket holds `rate * burst_seconds` tokens (at least 1), i.e.
    by default one second's worth. An idle source may then send one second of
    output at once, which is what a batcher wants, while a sustained flood is
    held to the rate.
    """

    def __init__(
        self,
        global_rate: float,
        per_task_rate: float,
        per_source_rate: float,
        now: float,
        burst_seconds: float = 1.0,
    ) -> None:
        if burst_seconds <= 0:
            raise ValueError(f"burst_seconds must be > 0, got {burst_seconds}")
        self._burst_seconds = burst_seconds
        self._per_task_rate = per_task_rate
        self._per_source_rate = per_source_rate
        self._global = self._bucket(global_rate, now)
        self._tasks: dict[str, TokenBucket] = {}
        self._sources: dict[tuple[str, str], TokenBucket] = {}

    def _bucket(self, rate: float, now: float) -> TokenBucket:
        return TokenBucket(rate, max(1.0, rate * self._burst_seconds), now)

    def _levels(self, task_id: str, source: str, now: float) -> tuple[TokenBucket, ...]:
        # A task or source seen for the first time gets a full bucket.
        task = self._tasks.get(task_id)
        if task is None:
            task = self._tasks[task_id] = self._bucket(self._per_task_rate, now)
        key = (task_id, source)
        per_source = self._sources.get(key)
        if per_source is None:
            per_source = self._sources[key] = self._bucket(self._per_source_rate, now)
        return (self._global, task, per_source)

    def grant(self, task_id: str, source: str, wanted: int, now: float) -> int:
        """How many of `wanted` records may pass now; their tokens are taken."""
        levels = self._levels(task_id, source, now)
        granted = wanted
        for bucket in levels:
            granted = bucket.peek(granted, now)
        for bucket in levels:
            bucket.grant(granted, now)
        return granted

    def retry_at(self, task_id: str, source: str, now: float) -> float:
        """When every level will have a token for this source again."""
        levels = self._levels(task_id, source, now)
        return now + max(bucket.time_until(1, now) for bucket in levels)
