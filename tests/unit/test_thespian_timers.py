"""The patch that keeps Thespian's select from sleeping through a wakeup
due within half a microsecond (adapters/thespian_timers.py)."""

from datetime import timedelta

from thespian.system.timing import ExpirationTimerView

from keruta_actors.adapters.thespian_timers import ONE_MICROSECOND, keep_near_wakeups


def delays_as_thespian_takes_them(view):
    # TCPTransport._runWithExpiry: list(filter(None, [run_time.remaining(), ...]))
    return list(filter(None, [view.remaining()]))


def test_a_wakeup_due_in_under_half_a_microsecond_keeps_a_delay():
    keep_near_wakeups()
    keep_near_wakeups()  # idempotent
    almost_due = ExpirationTimerView(None, 100.0000003, 100.0)
    assert not almost_due.expired()
    assert delays_as_thespian_takes_them(almost_due) == [ONE_MICROSECOND]


def test_other_timers_keep_their_meaning():
    keep_near_wakeups()
    assert ExpirationTimerView(None, 102.5, 100.0).remaining() == timedelta(seconds=2.5)
    assert ExpirationTimerView(None, 99.0, 100.0).remaining() == timedelta(0)  # expired
    assert ExpirationTimerView(None, None, 100.0).remaining() is None  # forever
    assert ExpirationTimerView(None, None, 100.0).remaining(forever=7) == 7
