"""The one hook every actor counts through (SPEC §8).

`current()` is the run's meter (agent_meter.Meter), put in place by
`install`; with monitoring off, and in tests that install none, it is a
`NullMeter` whose calls do nothing. So an actor never branches: its part is
one call where a chunk is read, not shipped, sent or confirmed, or where a
link comes and goes. This module imports nothing heavy: with monitoring
off, neither prometheus_client nor the rest of the metrics is loaded.
"""

from __future__ import annotations

from keruta_actors.policy.health import Snapshot


class NullMeter:
    """Monitoring is off: every call does nothing."""

    health = Snapshot()

    def _nothing(self, *args, **kwargs) -> None:
        return None

    read = not_shipped = delivered = sent = error = _nothing
    buffer = memory = spool = alert = _nothing
    link_started = link_up = link_lost = using = _nothing


_current = NullMeter()


def current():
    """The run's meter: agent_meter.Meter, or a NullMeter."""
    return _current


def install(meter) -> None:
    global _current
    _current = meter


def uninstall() -> None:
    install(NullMeter())
