import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.flow import Cut, Outbox
from keruta_actors.records import ID, LINE_NUMBER, RecordBlock, empty_block, make_record

SHARED = ({"processId": 1}, {"processId": 1}, {"agentVersion": "1"})


def block(*numbers, run_id="run"):
    rows = [make_record(run_id, "stdout", n, 0.0, "INFO", f"line {n}", SHARED[0]) for n in numbers]
    return RecordBlock.of_rows(run_id, rows, SHARED)


def numbers(cut):
    return list(cut.block.line_numbers) if cut.block is not None else []


def test_records_go_at_once_when_nothing_is_in_flight():
    outbox = Outbox(window=4, max_records=100)
    (cut,) = outbox.add(block(1), now=0.0)
    assert numbers(cut) == [1] and not cut.final
    assert list(cut.block.rows()) == list(block(1).rows())


def test_records_coalesce_while_a_chunk_is_in_flight():
    outbox = Outbox(window=4, max_records=100)
    outbox.add(block(1), now=0.0)
    assert outbox.add(block(2), now=0.0) == [] and outbox.add(block(3), now=0.0) == []
    assert outbox.held == 2
    (cut,) = outbox.accepted(now=0.0)
    assert numbers(cut) == [2, 3]
    assert list(cut.block.rows()) == list(block(2, 3).rows())


def test_full_chunks_fill_the_window_then_congest():
    outbox = Outbox(window=2, max_records=3)
    cuts = outbox.add(block(*range(10)), now=0.0)
    assert [numbers(c) for c in cuts] == [[0, 1, 2], [3, 4, 5]]
    assert outbox.held == 4 and not outbox.congested
    outbox.add(block(10, 11), now=0.0)
    assert outbox.congested
    assert [numbers(c) for c in outbox.accepted(now=0.0)] == [[6, 7, 8]]


def test_final_flushes_everything_and_closes():
    outbox = Outbox(window=1, max_records=2)
    outbox.add(block(0), now=0.0)
    assert outbox.add(block(1, 2, 3), now=0.0, final=True) == []
    assert [(numbers(c), c.final) for c in outbox.accepted(now=0.0)] == [([1, 2], False)]
    assert [(numbers(c), c.final) for c in outbox.accepted(now=0.0)] == [([3], True)]
    assert outbox.accepted(now=0.0) == []
    assert outbox.closed
    with pytest.raises(ValueError):
        outbox.add(block(4), now=0.0)


@pytest.mark.parametrize("nothing", [None, empty_block("run", SHARED)])
def test_an_empty_final_still_marks_the_end(nothing):
    outbox = Outbox(window=2, max_records=5)
    assert outbox.add(nothing, now=0.0, final=True) == [Cut(None, True)]
    assert outbox.held == 0 and outbox.closed


def test_records_of_another_run_start_a_chunk_of_their_own():
    outbox = Outbox(window=4, max_records=100)
    outbox.add(block(1), now=0.0)
    outbox.add(block(2), now=0.0)
    outbox.add(block(3, run_id="rerun"), now=0.0)
    cuts = outbox.add(block(4), now=0.0, final=True)  # draining: no credit needed while the window has room
    ids = [[row[ID] for row in c.block.rows()] for c in cuts]
    assert ids == [["run-stdout-2"], ["rerun-stdout-3"], ["run-stdout-4"]]
    assert [c.final for c in cuts] == [False, False, True]


# Linger: after a chunk, records wait out `linger` so a trickle of lines
# travels as one chunk per linger, not one per line.

LINGER = 0.25  # a binary fraction, so that times add up exactly


def test_a_record_after_a_quiet_spell_goes_at_once():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    assert [numbers(c) for c in outbox.add(block(1), now=10.0)] == [[1]]
    outbox.accepted(now=10.0)
    assert [numbers(c) for c in outbox.add(block(2), now=10.0 + LINGER)] == [[2]]
    outbox.accepted(now=11.0)
    assert [numbers(c) for c in outbox.add(block(3), now=20.0)] == [[3]]
    assert outbox.lingering_until() is None


def test_records_within_the_linger_wait_until_it_ends():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    outbox.add(block(1), now=10.0)
    assert outbox.accepted(now=10.0) == []
    assert outbox.add(block(2), now=10.0) == []
    assert outbox.add(block(3), now=10.125) == []
    assert outbox.held == 2
    assert outbox.lingering_until() == 10.25
    assert outbox.flush(now=10.125) == []
    assert [numbers(c) for c in outbox.flush(now=outbox.lingering_until())] == [[2, 3]]
    assert outbox.held == 0 and outbox.lingering_until() is None


def test_the_outbox_rests_for_the_linger_after_each_chunk():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    assert outbox.resting_until == float("-inf") + LINGER  # never cut: no rest
    outbox.add(block(1), now=10.0)
    assert outbox.resting_until == 10.0 + LINGER
    outbox.accepted(now=10.0)
    assert [numbers(c) for c in outbox.add(block(2), now=10.0 + LINGER)] == [[2]]
    assert outbox.resting_until == 10.0 + 2 * LINGER


def test_records_gathered_without_cutting_travel_in_one_chunk():
    # what several pipes held at one moment: the first must not go alone
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    assert outbox.add(block(1), now=10.0, cut=False) == []
    assert outbox.add(block(2), now=10.0, cut=False) == []
    assert [numbers(c) for c in outbox.flush(now=10.0)] == [[1, 2]]


def test_a_late_flush_sends_the_lingering_records():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    outbox.add(block(1), now=10.0)
    outbox.accepted(now=10.0)
    outbox.add(block(2), now=10.125)
    assert [numbers(c) for c in outbox.flush(now=12.0)] == [[2]]


def test_the_linger_counts_from_the_last_chunk_even_while_one_is_in_flight():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    outbox.add(block(1), now=10.0)
    assert outbox.add(block(2), now=10.0) == []
    assert outbox.lingering_until() is None  # waiting for a credit, not for the clock
    assert outbox.accepted(now=10.125) == []
    assert outbox.lingering_until() == 10.25
    outbox.add(block(3), now=10.25)
    assert outbox.lingering_until() is None  # the linger was over: they went
    outbox.add(block(4), now=10.25)
    assert [numbers(c) for c in outbox.accepted(now=10.5)] == [[4]]


def test_a_credit_after_the_linger_sends_at_once():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    outbox.add(block(1), now=10.0)
    outbox.add(block(2), now=10.0)
    assert [numbers(c) for c in outbox.accepted(now=10.5)] == [[2]]


def test_a_full_chunk_does_not_linger():
    outbox = Outbox(window=4, max_records=3, linger=LINGER)
    outbox.add(block(0), now=10.0)
    outbox.accepted(now=10.0)
    assert outbox.add(block(1, 2), now=10.0) == []
    assert [numbers(c) for c in outbox.add(block(3, 4), now=10.0)] == [[1, 2, 3]]
    assert outbox.held == 1


def test_the_final_chunk_does_not_linger():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    outbox.add(block(1), now=10.0)
    outbox.accepted(now=10.0)
    assert outbox.add(block(2), now=10.0) == []
    assert [(numbers(c), c.final) for c in outbox.add(block(3), now=10.0, final=True)] == [([2, 3], True)]
    assert outbox.lingering_until() is None


def test_an_empty_final_does_not_linger_either():
    outbox = Outbox(window=4, max_records=100, linger=LINGER)
    outbox.add(block(1), now=10.0)
    outbox.accepted(now=10.0)
    assert outbox.add(None, now=10.0, final=True) == [Cut(None, True)]


STEPS = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 12), st.sampled_from(["run", "run", "rerun"])),
    st.tuples(st.just("ack")),
    st.tuples(st.just("wait"), st.sampled_from([0.0, 0.125, 0.25, 0.5, 1.0])),
)


@given(st.integers(1, 4), st.integers(1, 5), st.sampled_from([0.0, 0.25, 0.5]), st.lists(STEPS, max_size=80))
def test_window_respected_order_kept_nothing_lost(window, max_records, linger, steps):
    """The outbox driven as a stage drives it: chunks added at the current
    time, credits coming back, and a wakeup at `lingering_until()`."""
    outbox = Outbox(window, max_records, linger)
    added, delivered = [], []
    now, in_flight, last_cut = 0.0, 0, None

    def send(cuts, held_before):
        nonlocal in_flight, last_cut
        for cut in cuts:
            if cut.block is None:
                assert cut.final
            else:
                assert 0 < len(cut.block) <= max_records
                delivered.extend(cut.block.rows())
        if cuts and last_cut is not None:
            first = cuts[0]
            # A short chunk that took everything held went for want of a
            # reason to wait: that is allowed only once the linger is over.
            if not first.final and len(first.block) < max_records and len(first.block) == held_before:
                assert now >= last_cut + linger
        in_flight += len(cuts)
        if cuts:
            last_cut = now
        assert in_flight <= window

    def check_nothing_waits_needlessly():
        assert outbox.in_flight == in_flight
        if in_flight < window:
            assert outbox.held < max_records  # a full chunk never waits for a credit
            if outbox.closed:
                assert outbox.held == 0  # nor does anything once the end was asked for
        if outbox.held and in_flight == 0:
            assert outbox.lingering_until() == last_cut + linger > now
        else:
            assert outbox.lingering_until() is None

    for step in steps + [("final",)] + [("ack",)] * 200:
        held_before = outbox.held
        if step[0] == "add":
            _, count, run_id = step
            numbers = range(len(added), len(added) + count)
            rows = [make_record(run_id, "stdout", n, now, "INFO", "m", SHARED[0]) for n in numbers]
            added.extend(rows)
            send(outbox.add(RecordBlock.of_rows(run_id, rows, SHARED), now), held_before + count)
        elif step[0] == "ack":
            in_flight = max(0, in_flight - 1)
            send(outbox.accepted(now), held_before)
        elif step[0] == "wait":
            target = now + step[1]
            while (until := outbox.lingering_until()) is not None and until <= target:
                now = until
                cuts = outbox.flush(now)
                assert cuts, "a wakeup at lingering_until() must send, or the stage would spin"
                send(cuts, held_before)
                held_before = outbox.held
            now = target
        else:
            send(outbox.add(None, now, final=True), held_before)
        assert outbox.congested == (outbox.held >= window * max_records)
        check_nothing_waits_needlessly()
    assert delivered == added
    assert [row[LINE_NUMBER] for row in delivered] == list(range(len(added)))
    assert outbox.held == 0 and outbox.closed
