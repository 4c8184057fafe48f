"""Keep Thespian from sleeping through a wakeup that is almost due.

Thespian 4.0.1's TCP transport waits in `select` for the time its next wakeup
has left, taken as `ExpirationTimerView.remaining()`, a `timedelta`, and it
drops falsy entries from the list of delays. A timedelta holds whole
microseconds, so a wakeup due less than half a microsecond after the loop
looked at the clock becomes `timedelta(0)`, is dropped as "no delay", and
`select` waits with no timeout at all: the wakeup is lost until some other
message happens to arrive. An actor waiting only on its timer then hangs for
good. We met it as a source reader that lingered (pipes unwatched, flush
due on the timer) and never woke again, its child blocked on a full pipe,
in about one run in a few hundred under load.

The fix: a wakeup that has not expired always has at least a microsecond
left. Actor processes are forked from the process that applies it, so they
inherit the change.
"""

from __future__ import annotations

from datetime import timedelta

ONE_MICROSECOND = timedelta(microseconds=1)


def keep_near_wakeups() -> None:
    """Patch `ExpirationTimerView.remaining` in this process. Idempotent."""
    from thespian.system.timing import ExpirationTimerView

    if getattr(ExpirationTimerView, "_keruta_near_wakeups", False):
        return
    original = ExpirationTimerView.remaining

    def remaining(self, forever=None):
        left = original(self, forever)
        if isinstance(left, timedelta) and not left and not self.expired():
            return ONE_MICROSECOND
        return left

    ExpirationTimerView.remaining = remaining
    ExpirationTimerView._keruta_near_wakeups = True
