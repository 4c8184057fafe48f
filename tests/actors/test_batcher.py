import time

import pytest

from keruta_actors.actors.batcher import Batcher
from keruta_actors.messages import (
    Batches,
    BatchesAcked,
    Chunk,
    ChunkAccepted,
    Configure,
    Drained,
    UseConnection,
)


def start(system, probe, plan, make_settings, **overrides):
    supervisor, upstream = probe(), probe()
    batcher = system.createActor(Batcher)
    system.tell(batcher, Configure(make_settings(**overrides), plan, supervisor=supervisor))
    return batcher, supervisor, upstream


def test_batches_go_to_the_connection_and_acks_drain_the_run(system, probe, seen, plan, make_settings, lines):
    batcher, supervisor, upstream = start(system, probe, plan, make_settings, **{"logStreaming.batchSize": 3})
    connection = probe()
    system.tell(batcher, UseConnection(connection))
    system.tell(upstream, ("send", batcher, Chunk(1, lines(1, 7), final=True)))
    (sent,) = seen(connection, Batches)
    assert [list(batch.line_numbers) for _, batch in sent.batches] == [[1, 2, 3], [4, 5, 6], [7]]
    assert seen(supervisor, Drained) == []
    system.tell(batcher, BatchesAcked(tuple(batch_id for batch_id, _ in sent.batches)))
    assert seen(supervisor, Drained) == [Drained(7)]


def test_a_partial_batch_goes_while_few_batches_are_unconfirmed(system, probe, seen, plan, make_settings, lines):
    # A round trip added to a lingered chunk's tail would be a round trip
    # added to its lines' latency; only a busier link makes it wait.
    batcher, _, upstream = start(system, probe, plan, make_settings, **{"logStreaming.batchSize": 10})
    connection = probe()
    system.tell(batcher, UseConnection(connection))
    system.tell(upstream, ("send", batcher, Chunk(1, lines(1, 15))))
    system.tell(upstream, ("send", batcher, Chunk(2, lines(16, 25))))
    sent = [list(batch.line_numbers) for message in seen(connection, Batches) for _, batch in message.batches]
    assert sent == [list(range(1, 11)), list(range(11, 16)), list(range(16, 26)), list(range(26, 36)), [36, 37, 38, 39, 40]]
    # with FREE_IN_FLIGHT (4) or more batches unconfirmed, the next partial one waits
    system.tell(upstream, ("send", batcher, Chunk(3, lines(41, 3))))
    assert len([b for m in seen(connection, Batches) for b in m.batches]) == 5


@pytest.mark.timeout(10)
def test_without_a_connection_records_wait_and_nothing_spins(system, probe, seen, plan, make_settings, lines, run_for):
    batcher, _, upstream = start(system, probe, plan, make_settings, **{"logStreaming.flushInterval": "10ms"})
    connection = probe()
    system.tell(upstream, ("send", batcher, Chunk(1, lines(1, 2))))
    # Well past the flush deadline. A batcher that re-armed a past deadline
    # with no connection to flush to would wake itself forever and this
    # test would never get past the next line.
    time.sleep(0.05)
    run_for(0.1)
    system.tell(batcher, UseConnection(connection))
    (sent,) = seen(connection, Batches)
    assert [list(batch.line_numbers) for _, batch in sent.batches] == [[1, 2]]


def test_a_new_connection_gets_every_unacknowledged_batch_again(system, probe, seen, plan, make_settings, lines):
    batcher, _, upstream = start(system, probe, plan, make_settings, **{"logStreaming.batchSize": 2})
    first, second = probe(), probe()
    system.tell(batcher, UseConnection(first))
    system.tell(upstream, ("send", batcher, Chunk(1, lines(1, 4))))
    (sent,) = seen(first, Batches)
    system.tell(batcher, BatchesAcked((sent.batches[0][0],)))
    system.tell(batcher, UseConnection(None))
    system.tell(batcher, UseConnection(second))
    (resent,) = seen(second, Batches)
    assert resent.batches == sent.batches[1:]


def test_upstream_waits_while_the_buffer_is_at_its_memory_cap(system, probe, seen, plan, make_settings, lines):
    # memoryLimitMB 16 caps the in-memory buffer at 8,192 records
    batcher, _, upstream = start(system, probe, plan, make_settings, **{"logStreaming.performance.memoryLimitMB": 16})
    system.tell(upstream, ("send", batcher, Chunk(1, lines(1, 9000))))
    assert seen(upstream, ChunkAccepted) == []
    connection = probe()
    system.tell(batcher, UseConnection(connection))
    for _ in range(100):  # acknowledge until the batcher has room again
        sent = seen(connection, Batches)
        system.tell(batcher, BatchesAcked(tuple(batch_id for message in sent for batch_id, _ in message.batches)))
        if seen(upstream, ChunkAccepted):
            break
    assert seen(upstream, ChunkAccepted) == [ChunkAccepted(1)]
