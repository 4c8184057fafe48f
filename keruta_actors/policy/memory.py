"""When the agent must give memory back (SPEC §7, §8).

`performance.memoryLimitMB` bounds the whole agent: the summed PSS of every
agent process (the CLI, Thespian's admin and logger, one process per actor;
never the user's script). An adapter measures it as a `MemoryReading`; this
policy is fed each reading and answers what to do:

    Steady    nothing to do
    Relieve   at or above `pressure_fraction` of the limit: every agent
              process collects garbage and shrinks its buffers to their base
              size (records beyond it go to the spool)
    Critical  above the limit itself: everything Relieve does, and the memory
              check reports unhealthy (the reading's `healthy` says so too)

Relieving costs something (a full collection pauses each process, a shrunk
buffer spools sooner), so it is not repeated on every reading:

- Hysteresis. Crossing into pressure counts as new only after usage fell
  below `relief_fraction` (lower than `pressure_fraction`). Hovering around
  the pressure line therefore relieves once, not on each crossing.
- While usage stays at or above the pressure line, the action is issued
  again at most once every `repeat_every` readings (counted from the last
  action), because buffers regrow under load and garbage accumulates again.
- Escalation. The first reading above the limit in an episode (an episode
  ends when usage falls below `relief_fraction`) gives `Critical` at once,
  even inside the wait after a `Relieve`: new, worse information is not
  held back. Further `Critical`s wait like `Relieve`s do.

So within any `repeat_every` readings of one episode there are at most two
actions: a `Relieve` and the episode's first `Critical`.

Thresholds are compared in bytes (`pss_bytes >= pressure_fraction * limit`),
so a test can place a reading exactly on a line.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class MemoryReading:
    """The whole agent's memory at one moment, as the health check reports it.

    `pss_bytes` sums each process's proportional set size (shared pages split
    between the processes sharing them, so libraries mapped by every actor
    process count once in total); where PSS is unavailable the adapter uses
    RSS, which overstates. `processes` is how many processes were measured.
    """

    pss_bytes: int
    processes: int
    limit_bytes: int

    def __post_init__(self) -> None:
        if self.limit_bytes < 1 or self.pss_bytes < 0 or self.processes < 0:
            raise ValueError(
                "need limit_bytes >= 1, pss_bytes >= 0, processes >= 0; got "
                f"{self.limit_bytes}, {self.pss_bytes}, {self.processes}"
            )

    @property
    def fraction(self) -> float:
        """Usage as a share of the limit: 0.5 is half, above 1.0 is over it."""
        return self.pss_bytes / self.limit_bytes

    @property
    def healthy(self) -> bool:
        """Not above the limit (the critical threshold); at it exactly is healthy."""
        return self.pss_bytes <= self.limit_bytes

    def describe(self) -> str:
        """One line for the health check's `message` and the agent's log."""
        return (
            f"{self.pss_bytes / MIB:.1f} MiB of {self.limit_bytes / MIB:.0f} MiB "
            f"({self.fraction:.0%}) in {self.processes} processes"
        )


@dataclass(frozen=True, slots=True)
class Steady:
    """Nothing to do for this reading."""


@dataclass(frozen=True, slots=True)
class Relieve:
    """Collect garbage and shrink the buffers, in every agent process."""

    level: str = "pressure"


@dataclass(frozen=True, slots=True)
class Critical:
    """Above the limit: relieve as for `Relieve`, and report unhealthy."""


Decision = Steady | Relieve | Critical


class MemoryPolicy:
    """Turns successive readings into at most occasional relief actions."""

    def __init__(
        self,
        limit_bytes: int,
        pressure_fraction: float = 0.8,
        relief_fraction: float = 0.7,
        repeat_every: int = 6,
    ) -> None:
        if limit_bytes < 1:
            raise ValueError(f"limit_bytes must be >= 1, got {limit_bytes}")
        # Pressure must come before the limit (or Relieve could never precede
        # Critical) and relief strictly below pressure (or no hysteresis).
        if not 0 < relief_fraction < pressure_fraction <= 1:
            raise ValueError(
                "need 0 < relief_fraction < pressure_fraction <= 1, got "
                f"{relief_fraction}, {pressure_fraction}"
            )
        if repeat_every < 1:
            raise ValueError(f"repeat_every must be >= 1, got {repeat_every}")
        self.limit_bytes = limit_bytes
        self.pressure_bytes = pressure_fraction * limit_bytes
        self.relief_bytes = relief_fraction * limit_bytes
        self.repeat_every = repeat_every
        self._armed = True  # the next crossing is a new one
        self._escalated = False  # this episode has had its Critical
        self._since_action = 0  # readings since the last Relieve or Critical
        self.last: MemoryReading | None = None

    @property
    def under_pressure(self) -> bool:
        """In an episode: crossed the pressure line and not yet back below
        `relief_fraction`. Stages may keep buffers at base size meanwhile."""
        return not self._armed

    def observe(self, reading: MemoryReading) -> Decision:
        """Take a reading; say what to do about it."""
        if reading.limit_bytes != self.limit_bytes:
            raise ValueError(
                f"reading measured against {reading.limit_bytes} bytes, policy limit is {self.limit_bytes}"
            )
        self.last = reading
        self._since_action += 1
        if reading.pss_bytes < self.relief_bytes:
            self._armed = True
            self._escalated = False
        if reading.pss_bytes > self.limit_bytes:
            decision: Decision = Critical()
        elif reading.pss_bytes >= self.pressure_bytes:
            decision = Relieve("pressure")
        else:
            return Steady()
        due = self._armed or self._since_action >= self.repeat_every
        escalating = isinstance(decision, Critical) and not self._escalated
        if not (due or escalating):
            return Steady()
        self._armed = False
        self._since_action = 0
        if isinstance(decision, Critical):
            self._escalated = True
        return decision
