"""One pending wakeup per actor.

A wakeup cannot be cancelled (Thespian's never could; the reactor keeps the
same rule), so an actor keeps a single slot: it asks for a wakeup only when
it needs one sooner than the one already pending, and every wakeup carries
the generation it was asked for under. A wakeup whose generation is not the
slot's current one is stale.
"""

from __future__ import annotations


class TimerSlot:
    def __init__(self) -> None:
        self.generation = 0
        self.due: float | None = None

    def request(self, due: float, now: float) -> float | None:
        """Ask to be woken at `due`. Returns the delay to schedule, or None when
        the pending wakeup already comes soon enough."""
        if self.due is not None and self.due <= due:
            return None
        self.generation += 1
        self.due = due
        return max(0.0, due - now)

    def fired(self, generation: int) -> bool:
        """A wakeup arrived; True when it is the current one (act on it)."""
        if generation != self.generation or self.due is None:
            return False
        self.due = None
        return True
