import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.signals import (
    LATENCY_BUCKETS,
    ErrorRate,
    Latency,
    SlidingCounts,
    bucket_counts,
    bucket_counts_since,
    histogram_quantile,
)


def test_bucket_counts_place_a_sample_on_a_bound_in_that_bound_s_bucket():
    assert bucket_counts([0.0, 1.0, 1.0001, 2.0, 99.0], (1.0, 2.0)) == [2, 2, 1]
    assert bucket_counts([], (1.0,)) == [0, 0]


@given(st.lists(st.floats(0, 1000, allow_nan=False)))
def test_bucket_counts_agree_with_placing_each_sample(samples):
    expected = [0] * (len(LATENCY_BUCKETS) + 1)
    for sample in samples:
        expected[next((i for i, b in enumerate(LATENCY_BUCKETS) if sample <= b), len(LATENCY_BUCKETS))] += 1
    assert bucket_counts(samples) == expected


def test_histogram_quantile_interpolates_as_promql_does():
    bounds = (1.0, 2.0, 4.0)
    assert histogram_quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert histogram_quantile(0.5, bounds, [10, 0, 0, 0]) == 0.5
    assert histogram_quantile(0.75, bounds, [50, 50, 0, 0]) == 1.5
    assert histogram_quantile(0.99, bounds, [0, 0, 0, 5]) == 4.0  # above every bound
    # 1% of samples above 1s puts the p99 exactly on the bound: `latency > 1s` does not hold.
    assert histogram_quantile(0.99, bounds, [99, 1, 0, 0]) == 1.0
    assert histogram_quantile(0.99, bounds, [98, 2, 0, 0]) > 1.0


def test_sliding_counts_forget_whole_slots_that_leave_the_window():
    counts = SlidingCounts(1, window=10.0, slots=5)  # slots of 2 s
    counts.add([1], 0.0)
    counts.add([2], 3.0)
    assert counts.total(9.9) == [3]
    assert counts.total(10.0) == [2]  # the slot [0, 2) has left
    assert counts.total(14.0) == [0]


@given(st.lists(st.tuples(st.floats(0, 5, allow_nan=False), st.integers(0, 9)), max_size=200))
def test_sliding_counts_hold_at_most_their_slots(adds):
    counts, now = SlidingCounts(1, window=6.0, slots=3), 0.0
    for dt, n in adds:
        now += dt
        counts.add([n], now)
        assert len(counts._ring) <= 3
        assert counts.total(now)[0] <= sum(n for _, n in adds)


def test_error_rate_is_the_failed_share_of_the_window():
    rate = ErrorRate(window=60.0, slots=12)
    assert rate.value(0.0) is None
    rate.add(0.0, failed=1, succeeded=9)
    rate.add(30.0, succeeded=10)
    assert rate.value(30.0) == 0.05
    assert rate.value(61.0) == 0.0


def test_latency_is_the_p99_of_the_window():
    latency = Latency(window=60.0)
    latency.add(bucket_counts([0.1] * 98 + [3.0] * 2), 0.0)
    assert latency.value(1.0) == pytest.approx(2.5 + 2.5 * 0.5)
    assert latency.value(120.0) is None


@given(st.lists(st.floats(min_value=900.0, max_value=1100.0), max_size=60), st.floats(min_value=950.0, max_value=1050.0))
def test_bucketing_stamps_agrees_with_bucketing_their_latencies(stamps, now):
    counts, total = bucket_counts_since(stamps, now)
    latencies = [max(0.0, now - stamp) for stamp in stamps]
    # A latency on a bound's edge may round either way: compare away from them.
    if all(min(abs(latency - bound) for bound in LATENCY_BUCKETS) > 1e-9 for latency in latencies):
        assert counts == bucket_counts(latencies)
    if all(stamp <= now for stamp in stamps):
        assert total == pytest.approx(sum(latencies), abs=1e-6)
