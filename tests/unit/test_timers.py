from keruta_actors.policy.timers import TimerSlot


def test_asks_for_a_wakeup_only_when_sooner_than_the_pending_one():
    slot = TimerSlot()
    assert slot.request(10.0, now=0.0) == 10.0
    assert slot.request(12.0, now=1.0) is None
    assert slot.request(5.0, now=1.0) == 4.0
    assert not slot.fired(1)  # superseded: stale
    assert slot.fired(2)
    assert not slot.fired(2)  # already acted on


def test_a_past_due_time_asks_for_an_immediate_wakeup():
    slot = TimerSlot()
    assert slot.request(3.0, now=5.0) == 0.0
