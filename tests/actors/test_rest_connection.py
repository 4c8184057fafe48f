"""The REST connection against the real receiver on loopback, scripted to
fail in the ways SPEC §5 names."""

import time

import pytest

from keruta_actors.actors.rest_connection import RestConnection
from keruta_actors.messages import Batches, BatchesAcked, Configure, LinkLost, LinkUp
from keruta_actors.receiver.app import ReceiverThread


@pytest.fixture
def api(tmp_path, scripted_api):
    with ReceiverThread(str(tmp_path / "receiver.db"), middlewares=[scripted_api.middleware]) as receiver:
        yield receiver


@pytest.fixture
def connect(system, probe, plan, make_settings, api):
    """A RestConnection to `api`; returns it with its supervisor and batcher probes."""

    def start(**overrides):
        supervisor, batcher = probe(), probe()
        settings = make_settings(**{"api.url": api.api_url, "api.retryInterval": "10ms", **overrides})
        connection = system.createActor(RestConnection)
        system.tell(connection, Configure(settings, plan, supervisor=supervisor, downstream=batcher, generation=4))
        return connection, supervisor, batcher

    return start


@pytest.fixture
def wait_for(seen, wait_until):
    """Wait until `probe` has been sent a `kind`; returns what it was sent."""
    return lambda probe, kind, timeout=10.0: wait_until(lambda: seen(probe, kind), timeout)


def acked_ids(seen, batcher):
    return [batch_id for ack in seen(batcher, BatchesAcked) for batch_id in ack.batch_ids]


def stored_lines(api):
    return [record["lineNumber"] for record in api.store.fetch("task")]


def test_batches_are_posted_in_order_and_acknowledged(system, connect, seen, wait_for, api, lines, scripted_api):
    connection, supervisor, batcher = connect()
    assert seen(supervisor, LinkUp) == [LinkUp(4, ())]
    system.tell(connection, Batches(2, ((3, lines(21, 20)),)))
    system.tell(connection, Batches(1, ((1, lines(1, 10)), (2, lines(11, 10)))))
    wait_for(batcher, BatchesAcked)
    assert acked_ids(seen, batcher) == [1, 2, 3]
    assert stored_lines(api) == list(range(1, 41))
    # the early message waited for its turn, then all three batches went in one request
    assert [path for _, path in scripted_api.posts()] == ["/api/v1/tasks/task/logs/batch"]


def test_without_a_batch_endpoint_records_go_one_per_request(system, connect, seen, wait_until, api, lines, scripted_api):
    scripted_api.batch_endpoint = False
    connection, _, batcher = connect()
    system.tell(connection, Batches(1, ((1, lines(1, 3)), (2, lines(4, 2)))))
    wait_until(lambda: acked_ids(seen, batcher) == [1, 2])
    assert stored_lines(api) == [1, 2, 3, 4, 5]
    paths = [path for _, path in scripted_api.posts()]
    assert paths == ["/api/v1/tasks/task/logs/batch"] + ["/api/v1/tasks/task/logs"] * 5


def test_5xx_is_retried_and_then_stored(system, connect, seen, wait_for, api, lines, scripted_api):
    scripted_api.answer(503, times=2)
    connection, supervisor, batcher = connect(**{"api.retryCount": 2})
    system.tell(connection, Batches(1, ((1, lines(1, 5)),)))
    wait_for(batcher, BatchesAcked)
    assert acked_ids(seen, batcher) == [1]
    assert stored_lines(api) == [1, 2, 3, 4, 5]
    assert len(scripted_api.posts()) == 3
    assert seen(supervisor, LinkLost) == []


def test_spent_retries_lose_the_link_without_acknowledging(system, connect, seen, wait_for, api, lines, scripted_api):
    scripted_api.answer(503, times=3)
    connection, supervisor, batcher = connect(**{"api.retryCount": 2})
    system.tell(connection, Batches(1, ((1, lines(1, 5)),)))
    (lost,) = wait_for(supervisor, LinkLost)
    assert not lost.fatal and "HTTP 503" in lost.problem and "3 tries" in lost.problem
    assert seen(batcher, BatchesAcked) == [] and stored_lines(api) == []


def test_a_500_from_the_batch_endpoint_sends_the_same_records_one_by_one(system, connect, seen, wait_for, api, lines,
                                                                          scripted_api):
    scripted_api.answer(500)
    connection, supervisor, batcher = connect()
    system.tell(connection, Batches(1, ((1, lines(1, 3)),)))
    wait_for(batcher, BatchesAcked)
    assert stored_lines(api) == [1, 2, 3]
    paths = [path.rsplit("/", 1)[1] for _, path in scripted_api.posts()]
    assert paths == ["batch", "logs", "logs", "logs"]
    assert seen(supervisor, LinkLost) == []


def test_refused_credentials_are_reported_once_and_never_retried(system, connect, seen, wait_for, lines, scripted_api,
                                                                 run_for):
    scripted_api.answer(401, times=100)
    connection, supervisor, _ = connect()
    system.tell(connection, Batches(1, ((1, lines(1, 5)),)))
    (lost,) = wait_for(supervisor, LinkLost)
    assert lost.fatal and "HTTP 401" in lost.problem
    system.tell(connection, Batches(2, ((2, lines(6, 5)),)))
    run_for(0.3)
    assert len(scripted_api.posts()) == 1 and len(seen(supervisor, LinkLost)) == 1


def test_429_waits_as_long_as_retry_after_says(system, connect, seen, wait_for, api, lines, scripted_api):
    scripted_api.answer(429, **{"Retry-After": "1"})
    connection, _, batcher = connect(**{"api.retryCount": 0})
    started = time.monotonic()
    system.tell(connection, Batches(1, ((1, lines(1, 5)),)))
    wait_for(batcher, BatchesAcked)
    (first, _), (second, _) = scripted_api.posts()
    assert second - first >= 0.95
    assert stored_lines(api) == [1, 2, 3, 4, 5] and time.monotonic() - started >= 0.95


def test_records_the_server_refuses_are_counted_as_rejected(system, connect, seen, wait_until, api, lines, scripted_api):
    scripted_api.batch_endpoint = False
    scripted_api.refused_lines = {2, 7}
    connection, _, batcher = connect()
    system.tell(connection, Batches(1, ((1, lines(1, 4)), (2, lines(5, 4)))))
    wait_until(lambda: acked_ids(seen, batcher) == [1, 2])
    rejected = [pair for ack in seen(batcher, BatchesAcked) for pair in ack.rejected]
    assert rejected == [(1, 1), (2, 1)]
    assert stored_lines(api) == [1, 3, 4, 5, 6, 8]


def test_requests_are_bounded_by_the_api_rate_limit(system, connect, seen, wait_for, api, lines, scripted_api):
    """600 requests a minute with bursts of 3: 13 one-record requests (the
    first finds no batch endpoint) take at least (13 - 3) / 10 s."""
    scripted_api.batch_endpoint = False
    connection, _, batcher = connect(**{"api.rateLimit.requestsPerMinute": 600, "api.rateLimit.burstSize": 3})
    system.tell(connection, Batches(1, ((1, lines(1, 12)),)))
    wait_for(batcher, BatchesAcked, timeout=20)
    times = [at for at, _ in scripted_api.posts()]
    assert len(times) == 13 and stored_lines(api) == list(range(1, 13))
    assert times[-1] - times[0] >= 0.95
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            # requests in any window: at most the burst plus the rate over it (small slack for clocks)
            assert j - i + 1 <= 3 + 10 * (times[j] - start) + 0.5


def test_a_request_too_large_for_the_server_is_split(system, connect, seen, wait_for, api, lines, scripted_api):
    scripted_api.answer(413)
    connection, _, batcher = connect()
    system.tell(connection, Batches(1, ((1, lines(1, 10)),)))
    wait_for(batcher, BatchesAcked)
    assert stored_lines(api) == list(range(1, 11))
    assert len(scripted_api.posts()) == 3  # refused whole, then two halves


def test_credentials_are_never_sent_in_clear_text_to_a_remote_host(system, connect, seen, wait_for, scripted_api):
    _, supervisor, _ = connect(**{"api.url": "http://logs.example.com/api/v1", "auth.token": "s3cret"})
    (lost,) = wait_for(supervisor, LinkLost)
    assert lost.fatal and "clear text" in lost.problem and "s3cret" not in lost.problem
    assert "auth.allowClearTextCredentials" in lost.problem
    assert seen(supervisor, LinkUp) == [] and scripted_api.requests == []


def test_a_redirect_is_not_followed(system, connect, seen, wait_for, lines, scripted_api):
    scripted_api.answer(302, Location="http://127.0.0.1:9/elsewhere")
    connection, supervisor, _ = connect()
    system.tell(connection, Batches(1, ((1, lines(1, 2)),)))
    (lost,) = wait_for(supervisor, LinkLost)
    assert lost.fatal and "HTTP 302" in lost.problem and "http://127.0.0.1:9/elsewhere" in lost.problem
    assert len(scripted_api.posts()) == 1
