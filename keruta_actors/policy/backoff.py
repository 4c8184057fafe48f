"""Reconnect backoff for the WebSocket (SPEC §6).

After a failure the connection waits, each wait up to `factor` times longer
than the last, never above `cap`. After `max_attempts` failures in a row the
agent switches to REST but keeps probing the WebSocket, the waits between
probes going on along the same capped sequence, and comes back when a probe
succeeds.

Jitter is "equal jitter": each delay is drawn from [envelope/2, envelope].
Spreading the delays keeps many agents cut off by one server restart from
reconnecting in lockstep; keeping the lower half means none of them retries
almost at once, which "full jitter" ([0, envelope]) would allow.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator, Protocol


class Uniform(Protocol):
    """The part of `random.Random` used here; pass a seeded one in tests."""

    def uniform(self, a: float, b: float) -> float: ...


def backoff_delays(
    initial: float, rng: Uniform, factor: float = 2.0, cap: float = 60.0
) -> Iterator[float]:
    """Endless delays: the n-th (from 0) lies in [e/2, e], e = min(cap, initial * factor**n)."""
    # Checked here, not in the generator body, so that bad settings fail
    # at start-up rather than at the first lost connection.
    if initial <= 0 or factor < 1 or cap <= 0:
        raise ValueError(f"need initial > 0, factor >= 1, cap > 0; got {initial}, {factor}, {cap}")
    return _jittered(initial, rng, factor, cap)


def retry_delays(interval: float, rng: Uniform, cap: float = 60.0) -> Iterator[float]:
    """Backoff delays for a configured retry interval. An interval of 0 is
    the user asking for no wait, so every delay is 0; a cap below the
    interval would shorten the very first wait, so the cap is at least it."""
    if interval <= 0:
        return itertools.repeat(0.0)
    return backoff_delays(interval, rng, cap=max(cap, interval))


def _jittered(initial: float, rng: Uniform, factor: float, cap: float) -> Iterator[float]:
    envelope = min(cap, initial)
    while True:
        yield envelope * rng.uniform(0.5, 1.0)
        # Capping at each step keeps the envelope finite however long it runs.
        envelope = min(cap, envelope * factor)


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Try to connect again at `when`; `attempt` failures in a row so far."""

    when: float
    attempt: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """`attempts` failures in a row: switch to the fallback transport, and
    probe this one again at `probe_at`."""

    attempts: int
    probe_at: float


Decision = RetryAt | GiveUp


class ReconnectPolicy:
    """Counts consecutive failures and says when to try again.

    `failed` returns `GiveUp` exactly once, on the `max_attempts`-th failure
    in a row; later failures are failed probes and return `RetryAt` again,
    with `exhausted` still set. `succeeded` starts over from `initial`.
    """

    def __init__(
        self, initial: float, max_attempts: int, cap: float, rng: Uniform, factor: float = 2.0
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self._initial = initial
        self._cap = cap
        self._factor = factor
        self._rng = rng
        self.max_attempts = max_attempts
        self.succeeded()

    def succeeded(self) -> None:
        self.attempts = 0
        self.exhausted = False
        self._delays = backoff_delays(self._initial, self._rng, self._factor, self._cap)

    def failed(self, now: float) -> Decision:
        self.attempts += 1
        when = now + next(self._delays)
        if self.attempts == self.max_attempts:
            self.exhausted = True
            return GiveUp(self.attempts, when)
        return RetryAt(when, self.attempts)

    def gave_up(self, now: float) -> Decision:
        """A failure that retrying soon cannot mend: give up at once (GiveUp
        if not given up yet), and probe on the backoff from here on."""
        if self.exhausted:
            return self.failed(now)
        self.attempts = self.max_attempts - 1
        return self.failed(now)
