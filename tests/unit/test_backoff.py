import random
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.backoff import (
    GiveUp,
    ReconnectPolicy,
    RetryAt,
    backoff_delays,
    retry_delays,
)


class Edge:
    """A stand-in for `random.Random` that always draws one end of the range."""

    def __init__(self, end):
        self.end = end

    def uniform(self, a, b):
        return a if self.end == "low" else b


def first(n, delays):
    return list(islice(delays, n))


def test_the_envelope_doubles_up_to_the_cap():
    assert first(7, backoff_delays(1.0, Edge("high"), cap=10.0)) == [1, 2, 4, 8, 10, 10, 10]


def test_equal_jitter_keeps_the_lower_half():
    assert first(6, backoff_delays(1.0, Edge("low"), cap=10.0)) == [0.5, 1, 2, 4, 5, 5]


def test_a_seeded_random_gives_the_same_delays_every_time():
    assert first(7, backoff_delays(1.0, random.Random(42), cap=10.0)) == [
        0.8197133992289418,
        1.025010755222667,
        2.5500586367382385,
        4.8928429525952915,
        8.682356070820061,
        8.383497437114556,
        9.460897838524227,
    ]


def test_an_initial_delay_above_the_cap_is_capped():
    assert first(2, backoff_delays(100.0, Edge("high"), cap=30.0)) == [30, 30]


@pytest.mark.parametrize("initial, factor, cap", [(0, 2, 60), (1, 0.5, 60), (1, 2, 0)])
def test_bad_settings_fail_at_once(initial, factor, cap):
    with pytest.raises(ValueError):
        backoff_delays(initial, random.Random(0), factor, cap)


@given(
    initial=st.floats(0.001, 100),
    factor=st.floats(1, 10),
    cap=st.floats(0.001, 1000),
    seed=st.integers(0, 2**32),
)
def test_delays_stay_within_a_nondecreasing_capped_envelope(initial, factor, cap, seed):
    envelope = min(cap, initial)
    for delay in first(60, backoff_delays(initial, random.Random(seed), factor, cap)):
        assert envelope / 2 <= delay <= envelope <= cap
        next_envelope = min(cap, envelope * factor)
        assert next_envelope >= envelope
        envelope = next_envelope


def test_retries_then_gives_up_once_then_keeps_probing():
    policy = ReconnectPolicy(initial=5.0, max_attempts=3, cap=60.0, rng=Edge("high"))
    assert policy.failed(now=100.0) == RetryAt(when=105.0, attempt=1)
    assert policy.failed(now=105.0) == RetryAt(when=115.0, attempt=2)
    assert not policy.exhausted
    assert policy.failed(now=115.0) == GiveUp(attempts=3, probe_at=135.0)
    assert policy.exhausted
    # Probes on the fallback transport go on at the capped pace.
    assert policy.failed(now=135.0) == RetryAt(when=175.0, attempt=4)
    assert policy.failed(now=175.0) == RetryAt(when=235.0, attempt=5)
    assert policy.failed(now=235.0) == RetryAt(when=295.0, attempt=6)
    assert policy.exhausted


def test_success_starts_over():
    policy = ReconnectPolicy(initial=5.0, max_attempts=2, cap=60.0, rng=Edge("high"))
    policy.failed(now=0.0)
    policy.failed(now=5.0)
    policy.succeeded()
    assert not policy.exhausted
    assert policy.failed(now=50.0) == RetryAt(when=55.0, attempt=1)
    assert policy.failed(now=55.0) == GiveUp(attempts=2, probe_at=65.0)


def test_decisions_are_frozen_values():
    decision = RetryAt(when=1.0, attempt=1)
    with pytest.raises(AttributeError):
        decision.when = 2.0
    assert not hasattr(decision, "__dict__")
    assert GiveUp(3, 9.0) == GiveUp(attempts=3, probe_at=9.0)


def test_max_attempts_must_allow_one_attempt():
    with pytest.raises(ValueError):
        ReconnectPolicy(initial=5.0, max_attempts=0, cap=60.0, rng=random.Random(0))


@given(
    max_attempts=st.integers(1, 12),
    outcomes=st.lists(st.booleans(), max_size=40),
    seed=st.integers(0, 2**32),
)
def test_give_up_comes_exactly_at_the_limit_of_failures_in_a_row(max_attempts, outcomes, seed):
    policy = ReconnectPolicy(2.0, max_attempts, 30.0, random.Random(seed))
    now, in_a_row = 0.0, 0
    for ok in outcomes:
        if ok:
            policy.succeeded()
            in_a_row = 0
            continue
        in_a_row += 1
        decision = policy.failed(now)
        if in_a_row == max_attempts:
            assert isinstance(decision, GiveUp) and decision.attempts == in_a_row
            when = decision.probe_at
        else:
            assert isinstance(decision, RetryAt) and decision.attempt == in_a_row
            when = decision.when
        assert now < when <= now + 30.0
        assert policy.exhausted == (in_a_row >= max_attempts)
        now = when


def test_retry_delays_for_a_zero_interval_never_wait():
    assert first(5, retry_delays(0.0, Edge("high"))) == [0.0] * 5


def test_retry_delays_never_cap_below_the_interval():
    assert first(3, retry_delays(90.0, Edge("high"), cap=60.0)) == [90.0, 90.0, 90.0]
    assert first(3, retry_delays(5.0, Edge("high"), cap=60.0)) == [5.0, 10.0, 20.0]
