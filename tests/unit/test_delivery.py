from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.delivery import DeliveryLedger
from keruta_actors.records import make_record


def records(n, timestamp=100.0):
    return tuple(make_record("r", "stdout", i, timestamp, "INFO", f"line {i}", {}) for i in range(n))


def test_open_numbers_batches_and_acks_confirm_them():
    ledger = DeliveryLedger(max_in_flight=4)
    numbered = ledger.open([records(2), records(3)])
    assert [batch_id for batch_id, _ in numbered] == [1, 2]
    assert ledger.room == 2 and ledger.undelivered == 5
    confirmed = ledger.acked((2,), now=101.5)
    assert confirmed.records == 3 and confirmed.latencies == (1.5, 1.5, 1.5)
    assert ledger.unacked() == [numbered[0]]
    assert ledger.delivered == 3


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
