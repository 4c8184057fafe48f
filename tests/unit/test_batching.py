import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from keruta_actors.policy.batching import (
    RECORD_OVERHEAD_BYTES,
    BatchPolicy,
    estimated_sizes,
)
from keruta_actors.records import ID, SOURCE_CODE, RecordBlock, empty_block, make_record

SHARED = ({"pid": 1}, {"pid": 1, "stream": 2}, {"agent": True})


def records(first, count, length=10):
    rows = [
        make_record("run", "stdout", n, 0.0, "INFO", "x" * length, SHARED[0])
        for n in range(first, first + count)
    ]
    return RecordBlock.of_rows("run", rows, SHARED)


def line_numbers(batches):
    return [list(batch.line_numbers) for batch in batches]


def test_full_batches_go_at_once_and_the_rest_waits():
    policy = BatchPolicy(batch_size=3, flush_interval=1.0, max_batch_bytes=10**6)
    policy.offer(records(0, 7), now=10.0)
    assert line_numbers(policy.take(now=10.0, link_free=False)) == [[0, 1, 2], [3, 4, 5]]
    assert policy.pending() == 1
    assert policy.next_deadline() == 11.0
    assert policy.take(now=10.9, link_free=False) == []
    assert line_numbers(policy.take(now=11.0, link_free=False)) == [[6]]
    assert policy.pending() == 0
    assert policy.next_deadline() is None


def test_an_idle_link_gets_a_lone_record_at_once():
    policy = BatchPolicy(batch_size=100, flush_interval=5.0, max_batch_bytes=10**6)
    policy.offer(records(0, 1), now=0.0)
    assert line_numbers(policy.take(now=0.0, link_free=True)) == [[0]]


def test_draining_flushes_the_partial_batch():
    policy = BatchPolicy(batch_size=100, flush_interval=5.0, max_batch_bytes=10**6)
    policy.offer(records(0, 2), now=0.0)
    assert policy.take(now=0.0, link_free=False) == []
    assert line_numbers(policy.take(now=0.0, link_free=False, draining=True)) == [[0, 1]]


def test_the_deadline_is_the_oldest_records():
    policy = BatchPolicy(batch_size=100, flush_interval=1.0, max_batch_bytes=10**6)
    policy.offer(records(0, 1), now=0.0)
    policy.offer(records(1, 1), now=0.7)
    assert policy.next_deadline() == 1.0
    assert line_numbers(policy.take(now=1.0, link_free=False)) == [[0, 1]]


def test_batches_are_cut_by_estimated_bytes():
    per_record = 100 + RECORD_OVERHEAD_BYTES
    policy = BatchPolicy(batch_size=10, flush_interval=1.0, max_batch_bytes=2 * per_record + 1)
    policy.offer(records(0, 5, length=100), now=0.0)
    # No third record fits next to two, so pairs are full batches; the last waits.
    assert line_numbers(policy.take(now=0.0, link_free=False)) == [[0, 1], [2, 3]]
    assert policy.pending() == 1


def test_a_batch_no_record_can_join_is_full():
    per_record = 100 + RECORD_OVERHEAD_BYTES
    policy = BatchPolicy(batch_size=10, flush_interval=1.0, max_batch_bytes=2 * per_record + 100)
    policy.offer(records(0, 2, length=100), now=0.0)
    # Even an empty third message (RECORD_OVERHEAD_BYTES) would overflow.
    assert line_numbers(policy.take(now=0.0, link_free=False)) == [[0, 1]]


def test_a_record_bigger_than_the_cap_goes_alone():
    policy = BatchPolicy(batch_size=10, flush_interval=1.0, max_batch_bytes=500)
    policy.offer(RecordBlock.concat([records(0, 1, length=10), records(1, 1, length=5000)]), now=0.0)
    assert line_numbers(policy.take(now=0.0, link_free=False)) == [[0], [1]]


def test_nothing_pending_gives_no_batch():
    policy = BatchPolicy(batch_size=3, flush_interval=1.0, max_batch_bytes=10**6)
    assert policy.take(now=0.0, link_free=True, draining=True) == []
    policy.offer(empty_block("run", SHARED), now=0.0)
    assert policy.next_deadline() is None and policy.pending() == 0
    assert policy.take(now=0.0, link_free=True, draining=True) == []


def test_the_estimate_is_the_message_plus_the_fixed_overhead():
    overhead = RECORD_OVERHEAD_BYTES
    assert estimated_sizes(["", "abc", "é"]) == [overhead, overhead + 3, overhead + 1]


def test_records_of_two_runs_never_share_a_batch():
    policy = BatchPolicy(batch_size=10, flush_interval=1.0, max_batch_bytes=10**6)
    other = make_record("rerun", "stdout", 7, 0.0, "INFO", "y", SHARED[0])
    policy.offer(records(0, 2), now=0.0)
    policy.offer(RecordBlock.of_rows("rerun", [other], SHARED), now=0.0)
    policy.offer(records(2, 1), now=0.0)
    batches = policy.take(now=0.0, link_free=False, draining=True)
    assert [[row[ID] for row in batch.rows()] for batch in batches] == [
        ["run-stdout-0", "run-stdout-1"],
        ["rerun-stdout-7"],
        ["run-stdout-2"],
    ]


def test_a_batch_joins_the_tails_and_heads_of_offered_blocks_in_order():
    policy = BatchPolicy(batch_size=3, flush_interval=1.0, max_batch_bytes=10**6)
    policy.offer(records(0, 2), now=0.0)
    policy.offer(records(2, 3), now=0.0)
    policy.offer(records(5, 2), now=0.0)
    batches = policy.take(now=0.0, link_free=False)
    assert line_numbers(batches) == [[0, 1, 2], [3, 4, 5]]
    assert [list(batch.rows()) for batch in batches] == [list(records(first, 3).rows()) for first in (0, 3)]
    assert policy.pending() == 1


@pytest.mark.parametrize("args", [(0, 1.0, 100), (1, -1.0, 100), (1, 1.0, 0)])
def test_rejects_impossible_settings(args):
    with pytest.raises(ValueError):
        BatchPolicy(*args)


# The actor's wakeups come late by up to one tick.
TICK = 0.05


class BatcherMachine(RuleBasedStateMachine):
    """The policy driven as the batcher actor drives it: `take` after every
    offer, and at `next_deadline()` (plus up to a tick of lateness). Offers
    mix sources, lines with metadata of their own, and now and then a block
    of another run, which must never share a batch."""

    def __init__(self):
        super().__init__()
        self.now = 1000.0
        self.offered = []  # records (rows) in offer order
        self.arrival = {}  # record id -> offer time
        self.sent = []  # records (rows) in send order

    def _take(self, link_free, draining=False):
        for batch in self.policy.take(self.now, link_free, draining):
            assert isinstance(batch, RecordBlock)
            assert len(batch), "empty batch"
            assert len(batch) <= self.policy.batch_size
            if len(batch) > 1:
                assert sum(estimated_sizes(batch.messages())) <= self.policy.max_batch_bytes
            rows = list(batch.rows())
            for row in rows:
                assert self.now - self.arrival[row[ID]] <= self.policy.flush_interval + TICK
            self.sent.extend(rows)

    @initialize(
        batch_size=st.integers(1, 6),
        flush_interval=st.sampled_from([0.0, 0.1, 0.3, 1.0]),
        max_batch_bytes=st.integers(150, 1500),
    )
    def configure(self, batch_size, flush_interval, max_batch_bytes):
        self.policy = BatchPolicy(batch_size, flush_interval, max_batch_bytes)

    @rule(
        lines=st.lists(st.tuples(st.integers(0, 1200), st.sampled_from(["stdout", "stderr"]), st.booleans()),
                       max_size=8),
        run_id=st.sampled_from(["run", "run", "rerun"]),
        link_free=st.booleans(),
    )
    def offer(self, lines, run_id, link_free):
        rows = []
        for length, source, partial in lines:
            shared = SHARED[SOURCE_CODE[source]]
            metadata = {**shared, "partial": True} if partial else shared
            number = len(self.offered) + len(rows)
            rows.append(make_record(run_id, source, number, 0.0, "INFO", "m" * length, metadata))
        self.policy.offer(RecordBlock.of_rows(run_id, rows, SHARED), self.now)
        self.offered.extend(rows)
        self.arrival.update((row[ID], self.now) for row in rows)
        self._take(link_free)

    @rule(dt=st.floats(0, 2), lateness=st.floats(0, TICK))
    def clock_advances(self, dt, lateness):
        target = self.now + dt
        while (deadline := self.policy.next_deadline()) is not None:
            if deadline + lateness > target:
                break
            self.now = max(self.now, deadline + lateness)
            self._take(link_free=False)
            # A wakeup at the deadline must flush, or the actor would spin.
            assert self.policy.next_deadline() != deadline
        self.now = target

    @rule()
    def link_goes_idle(self):
        self._take(link_free=True)

    @rule()
    def drain(self):
        self._take(link_free=False, draining=True)
        assert self.policy.pending() == 0

    @invariant()
    def nothing_lost_duplicated_or_reordered(self):
        assert self.sent == self.offered[: len(self.sent)]
        assert len(self.sent) + self.policy.pending() == len(self.offered)

    @invariant()
    def nothing_held_past_its_deadline(self):
        if self.policy.pending():
            oldest = self.offered[len(self.sent)]
            assert self.now - self.arrival[oldest[ID]] <= self.policy.flush_interval + TICK


BatcherMachine.TestCase.settings = settings(stateful_step_count=30)
test_batcher_machine = BatcherMachine.TestCase
