"""The alert signals that need a window of history: error_rate and latency.

Both are kept as counts in a ring of time slots (`SlidingCounts`), so memory
stays fixed however many records pass: a window of `window` seconds is
`slots` slots of `window / slots` seconds each, and a slot leaves the window
whole. The window seen at any moment therefore spans between
`window - window / slots` and `window` seconds.

Latency is kept as a histogram over `LATENCY_BUCKETS`, the same buckets the
exported `keruta_log_latency_seconds` uses, and its p99 is computed as
PromQL's `histogram_quantile` computes it. So the agent's `latency > 1s` and
the PromQL rule in deploy/ agree, and exactly so for a threshold that is a
bucket bound. `bucket_counts` sorts a chunk's samples once, which costs far
less per sample than placing each one (see telemetry.py).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import deque
from typing import Sequence

# Prometheus' default buckets (as the design document's histogram uses), then
# minutes: records replayed from the spool after an outage arrive that late.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
                   2.5, 5.0, 7.5, 10.0, 30.0, 60.0, 300.0)


def bucket_counts(samples: Sequence[float], bounds: Sequence[float] = LATENCY_BUCKETS) -> list[int]:
    """How many samples fall in each bucket: `le` bounds[0], then each
    (bounds[i-1], bounds[i]], and last those above every bound."""
    ordered = sorted(samples)
    edges = [bisect_right(ordered, bound) for bound in bounds] + [len(ordered)]
    return [high - low for low, high in zip([0, *edges], edges)]


def bucket_counts_since(stamps: Sequence[float], now: float,
                        bounds: Sequence[float] = LATENCY_BUCKETS) -> tuple[list[int], float]:
    """`bucket_counts` of the latencies `now - stamp`, and their sum, without
    computing a latency per sample: a latency is within a bound when its
    stamp is at or after `now - bound`, so sorting the stamps once (a chunk's
    are mostly equal and in order, which Timsort takes in one pass) and
    bisecting per bound is enough. A stamp after `now` (clocks differ)
    counts as no latency, never a negative one."""
    ordered = sorted(stamps)
    total = len(ordered)
    within = [total - bisect_left(ordered, now - bound) for bound in bounds] + [total]
    counts = [high - low for low, high in zip([0, *within], within)]
    # sum, not fsum: the sum's rounding (a millisecond in 10^12 s) is far
    # below what the histogram resolves, and fsum costs twice as much
    return counts, max(0.0, total * now - sum(ordered))


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """The q-quantile estimated from bucket counts as PromQL does: linear
    within the bucket holding it, from 0 in the first bucket, and the highest
    bound if it lies above every bound. None without samples."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for index, count in enumerate(counts[:-1]):
        if count and below + count >= rank:
            low = bounds[index - 1] if index else 0.0
            return low + (bounds[index] - low) * (rank - below) / count
        below += count
    return bounds[-1]  # it lies above every bound


class SlidingCounts:
    """Vectors of counts added over time; their sum over the last window."""

    def __init__(self, size: int, window: float = 60.0, slots: int = 12) -> None:
        if size < 1 or not window > 0 or slots < 1:
            raise ValueError(f"need size >= 1, window > 0, slots >= 1; got {size}, {window}, {slots}")
        self.size = size
        self.slots = slots
        self.width = window / slots
        self._ring: deque[tuple[int, list[int]]] = deque()  # (slot number, counts), oldest first

    def add(self, counts: Sequence[int], now: float) -> None:
        slot = math.floor(now / self.width)
        self._expire(slot)
        if not self._ring or self._ring[-1][0] != slot:
            self._ring.append((slot, [0] * self.size))
        totals = self._ring[-1][1]
        for index, count in enumerate(counts):
            totals[index] += count

    def total(self, now: float) -> list[int]:
        self._expire(math.floor(now / self.width))
        totals = [0] * self.size
        for _, counts in self._ring:
            for index, count in enumerate(counts):
                totals[index] += count
        return totals

    def _expire(self, slot: int) -> None:
        while self._ring and self._ring[0][0] <= slot - self.slots:
            self._ring.popleft()


class ErrorRate:
    """error_rate: failed operations as a share of all operations (sends,
    posts, spool writes) over the window; None when there were none."""

    def __init__(self, window: float = 60.0, slots: int = 12) -> None:
        self._counts = SlidingCounts(2, window, slots)

    def add(self, now: float, failed: int = 0, succeeded: int = 0) -> None:
        self._counts.add((failed, succeeded), now)

    def value(self, now: float) -> float | None:
        failed, succeeded = self._counts.total(now)
        return failed / (failed + succeeded) if failed + succeeded else None


class Latency:
    """latency: the p99 of delivery latencies over the window, in seconds."""

    def __init__(self, window: float = 60.0, slots: int = 12, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(bounds)
        self._counts = SlidingCounts(len(self.bounds) + 1, window, slots)

    def add(self, counts: Sequence[int], now: float) -> None:
        """`counts` from `bucket_counts` with the same bounds: a chunk's
        counts are computed once and given to the exported histogram too."""
        self._counts.add(counts, now)

    def value(self, now: float, q: float = 0.99) -> float | None:
        return histogram_quantile(q, self.bounds, self._counts.total(now))
