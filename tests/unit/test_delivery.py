from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.delivery import DeliveryLedger, StreamProgress
from keruta_actors.records import RecordBlock, make_record

SHARED = ({"processId": 1}, {"processId": 1}, {})


def records(n, timestamp=100.0, first=0):
    numbers = range(first, first + n)
    rows = [make_record("r", "stdout", i, timestamp, "INFO", f"line {i}", SHARED[0]) for i in numbers]
    return RecordBlock.of_rows("r", rows, SHARED)


def test_open_numbers_batches_and_acks_confirm_them():
    ledger = DeliveryLedger(max_in_flight=4)
    numbered = ledger.open([records(2), records(3)])
    assert [batch_id for batch_id, _ in numbered] == [1, 2]
    assert ledger.room == 2 and ledger.undelivered == 5
    confirmed = ledger.acked((2,), now=101.5)
    assert confirmed.records == 3 and confirmed.latencies == (1.5, 1.5, 1.5)
    assert ledger.unacked() == [numbered[0]]
    assert ledger.delivered == 3


def test_unacknowledged_batches_are_handed_out_again_unchanged_and_in_order():
    ledger = DeliveryLedger(max_in_flight=4)
    first, second, third = (records(2, first=0), records(1, first=2), records(3, first=3))
    numbered = ledger.open([first, second, third])
    ledger.acked((2,), now=100.0)
    assert [(batch_id, batch) for batch_id, batch in ledger.unacked()] == [(1, first), (3, third)]
    # The very same records, so a resend carries the same record ids.
    assert ledger.unacked()[0][1] is first and ledger.unacked()[1][1] is third
    assert [batch_id for batch_id, _ in ledger.open([records(1, first=6)])] == [4]
    assert numbered[0] == (1, first)


def test_latency_is_taken_per_record_from_when_it_was_read():
    ledger = DeliveryLedger(max_in_flight=4)
    read_at = (100.0, 100.5, 103.0)
    rows = [make_record("r", "stdout", i, t, "INFO", "x", SHARED[0]) for i, t in enumerate(read_at)]
    ledger.open([RecordBlock.of_rows("r", rows, SHARED)])
    # A record stamped after `now` (clocks differ) counts as no latency, never a negative one.
    assert ledger.acked((1,), now=102.0).latencies == (2.0, 1.5, 0.0)


def test_repeated_and_unknown_acks_are_ignored():
    ledger = DeliveryLedger(max_in_flight=4)
    ledger.open([records(2)])
    assert ledger.acked((1,), now=100).records == 2
    assert ledger.acked((1, 99), now=100).records == 0
    assert ledger.delivered == 2 and ledger.in_flight == 0


@given(st.lists(st.integers(1, 5), min_size=1, max_size=30), st.randoms())
def test_every_record_is_delivered_once_whatever_the_ack_order(sizes, rng):
    ledger = DeliveryLedger(max_in_flight=100)
    numbered = ledger.open([records(n) for n in sizes])
    ids = [batch_id for batch_id, _ in numbered]
    rng.shuffle(ids)
    for batch_id in ids + ids[:3]:  # some acks arrive twice
        ledger.acked((batch_id,), now=100)
    assert ledger.delivered == sum(sizes) and ledger.undelivered == 0


def stream_block(namespace, first, last, source="stdout"):
    rows = [make_record(namespace, source, n, 0.0, "INFO", f"line {n}", SHARED[0]) for n in range(first, last + 1)]
    return RecordBlock.of_rows(namespace, rows, SHARED)


def watermarks(ledger, progress):
    return progress.watermarks(ledger.firsts())


def test_a_watermark_is_below_the_lowest_unconfirmed_line_of_its_stream_whatever_the_ack_order():
    ledger, progress = DeliveryLedger(max_in_flight=10), StreamProgress()
    (first, _), (second, _), (third, _) = ledger.open(
        [stream_block("a", 1, 3), stream_block("a", 1, 2, "stderr"), stream_block("a", 4, 5)])
    progress.passed(((("a", "stdout"), 5), (("a", "stderr"), 2)))
    ledger.acked((third,), now=0)  # out of order: lines 1-3 are not confirmed yet
    assert watermarks(ledger, progress) == {("a", "stdout"): 0, ("a", "stderr"): 0}
    ledger.acked((first, second), now=0)
    assert watermarks(ledger, progress) == {("a", "stdout"): 5, ("a", "stderr"): 2}
    assert ledger.delivered_by_stream == {("a", "stdout"): 5, ("a", "stderr"): 2}


def test_a_watermark_passes_lines_filtered_upstream():
    ledger, progress = DeliveryLedger(max_in_flight=10), StreamProgress()
    ((batch, _),) = ledger.open([stream_block("a", 1, 2)])
    progress.passed(((("a", "stdout"), 9),))  # lines 3-9 were dropped upstream
    assert watermarks(ledger, progress) == {("a", "stdout"): 0}
    ledger.acked((batch,), now=0)
    assert watermarks(ledger, progress) == {("a", "stdout"): 9}


def test_records_the_server_refused_are_done_with_but_not_delivered():
    ledger = DeliveryLedger(max_in_flight=4)
    ledger.open([records(3), records(2, first=3)])
    confirmed = ledger.acked((1, 2), now=100.0, rejected={1: 1, 2: 2})
    assert (confirmed.records, confirmed.rejected) == (2, 3)
    assert ledger.delivered == 2 and ledger.in_flight == 0
    # a late, repeated acknowledgement (a retired REST connection's) refuses nothing more
    assert ledger.acked((1,), now=100.0, rejected={1: 1}).rejected == 0
    assert ledger.delivered == 2
