import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.flow import Outbox


def test_records_go_at_once_when_nothing_is_in_flight():
    outbox = Outbox(window=4, max_records=100)
    (cut,) = outbox.add(["a"])
    assert cut.records == ("a",) and not cut.final


def test_records_coalesce_while_a_chunk_is_in_flight():
    outbox = Outbox(window=4, max_records=100)
    outbox.add(["a"])
    assert outbox.add(["b"]) == [] and outbox.add(["c"]) == []
    assert outbox.held == 2
    (cut,) = outbox.accepted()
    assert cut.records == ("b", "c")


def test_full_chunks_fill_the_window_then_congest():
    outbox = Outbox(window=2, max_records=3)
    cuts = outbox.add(list(range(10)))
    assert [c.records for c in cuts] == [(0, 1, 2), (3, 4, 5)]
    assert outbox.held == 4 and not outbox.congested
    outbox.add([10, 11])
    assert outbox.congested
    assert [c.records for c in outbox.accepted()] == [(6, 7, 8)]


def test_final_flushes_everything_and_closes():
    outbox = Outbox(window=1, max_records=2)
    outbox.add(["a"])
    assert outbox.add(["b", "c", "d"], final=True) == []
    assert [(c.records, c.final) for c in outbox.accepted()] == [(("b", "c"), False)]
    assert [(c.records, c.final) for c in outbox.accepted()] == [(("d",), True)]
    assert outbox.accepted() == []
    assert outbox.closed
    with pytest.raises(ValueError):
        outbox.add(["late"])


def test_an_empty_final_still_marks_the_end():
    outbox = Outbox(window=2, max_records=5)
    assert [(c.records, c.final) for c in outbox.add([], final=True)] == [((), True)]


@given(st.integers(1, 4), st.integers(1, 5),
       st.lists(st.one_of(st.integers(0, 12), st.just("ack")), max_size=80))
def test_window_respected_order_kept_nothing_lost(window, max_records, steps):
    outbox = Outbox(window, max_records)
    added, delivered, counter, in_flight = 0, [], 0, 0
    for step in steps + ["final"] + ["ack"] * 200:
        if step == "ack":
            cuts = outbox.accepted()
            in_flight = max(0, in_flight - 1)
        elif step == "final":
            cuts = outbox.add([], final=True)
        else:
            cuts = outbox.add(list(range(counter, counter + step)))
            counter += step
        for cut in cuts:
            assert 0 < len(cut.records) <= max_records or cut.final
            delivered.extend(cut.records)
        in_flight += len(cuts)
        assert in_flight <= window
    assert delivered == list(range(counter))
