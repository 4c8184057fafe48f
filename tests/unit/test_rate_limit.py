import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from keruta_actors.policy.rate_limit import HierarchicalLimiter, TokenBucket

# Float accumulation may let a bound be met a hair over; never by a token.
TOLERANCE = 1e-6

rates = st.floats(min_value=0.1, max_value=1000, allow_nan=False)
capacities = st.floats(min_value=1, max_value=1000, allow_nan=False)
steps = st.lists(
    st.tuples(st.floats(min_value=0, max_value=2), st.integers(min_value=0, max_value=500)),
    max_size=40,
)


def test_starts_full_and_grants_whole_tokens():
    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert bucket.grant(8, now=0.0) == 5
    assert bucket.grant(1, now=0.0) == 0
    assert bucket.time_until(1, now=0.0) == pytest.approx(0.1)
    assert bucket.grant(1, now=0.05) == 0  # half a token is kept, not handed out
    assert bucket.grant(3, now=0.1) == 1


def test_frequent_callers_get_the_full_rate():
    # Refilling with int(elapsed * rate) and resetting the clock would grant
    # nothing here: every call sees half a token and throws it away.
    bucket = TokenBucket(rate=10, capacity=1, now=0.0)
    bucket.grant(1, now=0.0)
    granted = sum(bucket.grant(1, now=i * 0.05) for i in range(1, 201))
    assert granted == 100  # 10 s at 10/s


def test_rate_zero_is_unlimited():
    bucket = TokenBucket(rate=0, capacity=0, now=0.0)
    assert bucket.grant(10**9, now=0.0) == 10**9
    assert bucket.time_until(10**9, now=0.0) == 0.0


def test_time_until_more_than_capacity_waits_until_full():
    bucket = TokenBucket(rate=2, capacity=4, now=0.0)
    bucket.grant(4, now=0.0)
    assert bucket.time_until(100, now=0.0) == pytest.approx(2.0)


def test_a_clock_stepping_back_mints_nothing():
    bucket = TokenBucket(rate=1, capacity=10, now=100.0)
    bucket.grant(10, now=100.0)
    assert bucket.grant(10, now=50.0) == 0
    assert bucket.grant(10, now=101.0) == 1


@pytest.mark.parametrize("rate, capacity", [(-1, 5), (5, 0.5)])
def test_rejects_settings_that_could_never_grant(rate, capacity):
    with pytest.raises(ValueError):
        TokenBucket(rate, capacity, now=0.0)


@given(rate=rates, capacity=capacities, start=st.floats(0, 1000), steps=steps)
def test_never_grants_more_than_capacity_plus_refill(rate, capacity, start, steps):
    bucket = TokenBucket(rate, capacity, now=start)
    now, total = start, 0
    for dt, wanted in steps:
        now += dt
        granted = bucket.grant(wanted, now)
        assert 0 <= granted <= wanted
        total += granted
        assert total <= capacity + rate * (now - start) + TOLERANCE
        # Never below zero: one more token is never further than 1/rate away.
        assert bucket.time_until(1, now) <= 1 / rate + TOLERANCE


@given(rate=rates, capacity=capacities, start=st.floats(0, 1000), steps=steps)
def test_keeps_the_promise_of_time_until(rate, capacity, start, steps):
    bucket = TokenBucket(rate, capacity, now=start)
    now = start
    for dt, wanted in steps:
        now += dt
        if bucket.grant(wanted, now) < wanted:
            # A refusal always comes with a wait, so no caller spins.
            assert bucket.time_until(wanted, now) > 0
        n = max(1, min(wanted, int(capacity)))
        now += bucket.time_until(n, now)
        assert bucket.grant(n, now) == n


def test_limiter_takes_only_what_every_level_gives():
    limiter = HierarchicalLimiter(global_rate=5, per_task_rate=0, per_source_rate=2, now=0.0)
    assert limiter.grant("t", "a", 10, now=0.0) == 2
    # Refused by its own source bucket; the global tokens are not spent.
    assert limiter.grant("t", "a", 10, now=0.0) == 0
    assert limiter.grant("t", "a", 10, now=0.0) == 0
    assert limiter.grant("t", "b", 10, now=0.0) == 2
    assert limiter.grant("t", "c", 10, now=0.0) == 1


def test_limiter_retry_at_waits_for_the_slowest_level():
    limiter = HierarchicalLimiter(global_rate=100, per_task_rate=10, per_source_rate=4, now=0.0)
    assert limiter.grant("t", "a", 100, now=0.0) == 4
    assert limiter.retry_at("t", "a", now=0.0) == pytest.approx(0.25)
    assert limiter.grant("t", "a", 100, now=0.25) == 1


def test_limiter_all_unlimited_grants_everything():
    limiter = HierarchicalLimiter(0, 0, 0, now=0.0)
    assert limiter.grant("t", "stdout", 10**9, now=0.0) == 10**9
    assert limiter.retry_at("t", "stdout", now=3.0) == 3.0


def test_limiter_burst_is_one_second_of_rate_but_at_least_one():
    limiter = HierarchicalLimiter(global_rate=0.5, per_task_rate=0, per_source_rate=0, now=0.0)
    assert limiter.grant("t", "a", 10, now=0.0) == 1
    limiter = HierarchicalLimiter(0, 0, per_source_rate=50, now=0.0, burst_seconds=2.0)
    assert limiter.grant("t", "a", 1000, now=0.0) == 100


TASKS = ("t1", "t2")
SOURCES = ("stdout", "stderr")


class LimiterMachine(RuleBasedStateMachine):
    """The limiter beside a model made of independent buckets, one per level.

    Every grant must equal the least any level could give, and then be taken
    from each: a level never pays for a refusal elsewhere. Each level must
    also respect its own bound from the moment it was first used.
    """

    def __init__(self):
        super().__init__()
        self.now = 0.0

    @initialize(
        rates=st.tuples(*[st.sampled_from([0, 1, 3, 10, 50])] * 3),
        burst=st.sampled_from([0.5, 1.0, 2.0]),
    )
    def configure(self, rates, burst):
        self.rates = dict(zip(("global", "task", "source"), rates))
        self.burst = burst
        self.limiter = HierarchicalLimiter(*rates, now=self.now, burst_seconds=burst)
        self.model = {}  # level key -> [bucket, first seen, rate, granted so far]

    def _model_bucket(self, key, rate):
        if key not in self.model:
            bucket = TokenBucket(rate, max(1.0, rate * self.burst), self.now)
            self.model[key] = [bucket, self.now, rate, 0]
        return self.model[key]

    @rule(
        task=st.sampled_from(TASKS),
        source=st.sampled_from(SOURCES),
        wanted=st.integers(0, 40),
    )
    def grant(self, task, source, wanted):
        levels = [
            self._model_bucket(("global",), self.rates["global"]),
            self._model_bucket(("task", task), self.rates["task"]),
            self._model_bucket(("source", task, source), self.rates["source"]),
        ]
        could = min(level[0].peek(wanted, self.now) for level in levels)
        granted = self.limiter.grant(task, source, wanted, self.now)
        assert granted == could
        for level in levels:
            level[0].grant(granted, self.now)
            level[3] += granted
        retry_at = self.limiter.retry_at(task, source, self.now)
        assert retry_at >= self.now
        if granted < wanted:
            assert retry_at > self.now

    @rule(dt=st.floats(min_value=0, max_value=1.5))
    def clock_advances(self, dt):
        self.now += dt

    @invariant()
    def every_level_keeps_its_bound(self):
        for bucket, first_seen, rate, granted in self.model.values():
            if rate:
                assert granted <= bucket.capacity + rate * (self.now - first_seen) + TOLERANCE


LimiterMachine.TestCase.settings = settings(stateful_step_count=30)
test_limiter_machine = LimiterMachine.TestCase
