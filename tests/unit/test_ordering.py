from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.ordering import InOrder


def test_an_early_message_waits_for_the_one_before_it():
    order = InOrder()
    assert order.arrived(2, "b") == []
    assert order.arrived(1, "a") == ["a", "b"]
    assert order.arrived(3, "c") == ["c"]


def test_repeats_are_ignored_whether_released_or_waiting():
    order = InOrder()
    assert order.arrived(1, "a") == ["a"]
    assert order.arrived(1, "a again") == []
    assert order.arrived(3, "c") == []
    assert order.arrived(3, "c again") == []
    assert order.arrived(2, "b") == ["b", "c"]


@given(st.integers(1, 40).flatmap(lambda n: st.permutations(list(range(1, n + 1)) * 2)))
def test_any_arrival_order_releases_each_message_once_in_order(arrivals):
    order = InOrder()
    released = [item for seq in arrivals for item in order.arrived(seq, seq)]
    assert released == sorted(set(arrivals))
