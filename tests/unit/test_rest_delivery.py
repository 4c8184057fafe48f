import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keruta_actors.policy.rest_delivery import (
    Fail,
    OneByOne,
    Outcome,
    Reject,
    RestPolicy,
    Split,
    Stored,
    Wait,
    retry_after_seconds,
)

WALL = 1_800_000_000.0  # any epoch time


def policy(retry_count=3, retry_interval=5.0, rpm=0, burst=100, now=0.0):
    return RestPolicy(retry_count, retry_interval, rpm, burst, random.Random(1), now)


def answer(p, status, records=10, now=0.0, **outcome):
    return p.answered(Outcome(status, **outcome), records, now, WALL)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_2xx_is_stored(status):
    assert answer(policy(), status) == Stored()


def test_a_missing_batch_endpoint_switches_to_one_record_per_request_once():
    p = policy()
    assert answer(p, 404) == OneByOne("HTTP 404") and not p.batch_endpoint
    fail = answer(p, 404, records=1, code="TASK_NOT_FOUND")
    assert isinstance(fail, Fail) and fail.fatal and "TASK_NOT_FOUND" in fail.why


def test_405_from_the_single_endpoint_is_fatal():
    p = policy()
    assert answer(p, 405) == OneByOne("HTTP 405")
    assert answer(p, 405, records=1).fatal


@pytest.mark.parametrize("status", [404, 405, 500, 501])
def test_a_single_record_stored_after_the_batch_endpoint_failed_retires_batch_for_the_run(status):
    p = policy()
    assert isinstance(answer(p, status), OneByOne) and not p.batch_endpoint
    assert answer(p, 201, records=1) == Stored(no_batch_endpoint=True)
    assert answer(p, 201, records=1) == Stored()  # said once
    assert answer(p, 500, records=1) != OneByOne("HTTP 500") and not p.batch_endpoint


def test_a_server_failing_on_both_endpoints_is_retried_on_the_batch_endpoint_and_gives_up():
    p = policy(retry_count=2)
    for _ in range(2):
        assert isinstance(answer(p, 500), OneByOne)
        assert isinstance(answer(p, 500, records=1), Wait) and p.batch_endpoint
    assert isinstance(answer(p, 500), OneByOne)
    assert isinstance(answer(p, 500, records=1), Fail)


def test_a_rate_limited_single_record_keeps_the_batch_endpoint_in_doubt():
    p = policy()
    answer(p, 500)
    assert isinstance(answer(p, 429, records=1, retry_after="1"), Wait) and not p.batch_endpoint
    assert answer(p, 201, records=1) == Stored(no_batch_endpoint=True)


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_fatal_and_say_which_setting(status):
    decision = answer(policy(), status)
    assert isinstance(decision, Fail) and decision.fatal and "auth.token" in decision.why


def test_5xx_retries_retry_count_times_with_growing_jittered_waits_then_fails():
    p = policy(retry_count=3, retry_interval=5.0)
    waits = []
    for attempt in range(3):
        decision = answer(p, 503, now=100.0)
        assert isinstance(decision, Wait)
        waits.append(decision.until - 100.0)
        assert p.ready_at(100.0) == decision.until
    assert 2.5 <= waits[0] <= 5 and 5 <= waits[1] <= 10 and 10 <= waits[2] <= 20
    final = answer(p, 503, now=100.0)
    assert isinstance(final, Fail) and not final.fatal and "4 tries" in final.why


def test_a_success_starts_the_retry_count_over():
    p = policy(retry_count=1)
    assert isinstance(answer(p, 503), Wait)
    assert answer(p, 200) == Stored()
    assert isinstance(answer(p, 503), Wait)


def test_timeouts_and_refusals_retry_like_5xx():
    p = policy(retry_count=1)
    assert isinstance(answer(p, None, problem="cannot reach x: connection refused"), Wait)
    decision = answer(p, None, problem="cannot reach x: connection refused")
    assert isinstance(decision, Fail) and "connection refused" in decision.why


def test_a_rejected_certificate_is_fatal_at_once():
    decision = answer(policy(), None, problem="cannot reach x: TLS certificate rejected", fatal=True)
    assert decision == Fail("cannot reach x: TLS certificate rejected", True)


def test_429_honours_retry_after_and_does_not_count_as_a_failure():
    p = policy(retry_count=0)
    for _ in range(5):
        assert answer(p, 429, now=10.0, retry_after="7") == Wait(17.0, "rate limited by the server (HTTP 429)")
    assert p.ready_at(10.0) == 17.0
    assert isinstance(answer(p, 429, now=10.0), Wait)  # no header: the backoff


def test_413_splits_a_request_and_rejects_a_single_record():
    p = policy()
    assert answer(p, 413, records=8) == Split()
    assert isinstance(answer(p, 413, records=1), Reject)


@pytest.mark.parametrize("status", [400, 409, 422])
def test_other_4xx_reject_for_good(status):
    decision = answer(policy(), status, code="INVALID_LOG_FORMAT")
    assert decision == Reject(f"HTTP {status} INVALID_LOG_FORMAT")


def test_zero_retry_interval_retries_at_once():
    p = policy(retry_interval=0)
    assert answer(p, 503, now=3.0) == Wait(3.0, "HTTP 503")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 15 Jan 2027 08:00:30 GMT", None),  # checked against its own wall time below
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
        ("Wed, 15 Jan 2027 08:00:30", None),
    ],
)
def test_retry_after_reads_seconds_and_rejects_garbage(header, seconds):
    if header and header.endswith("GMT"):
        from email.utils import parsedate_to_datetime

        at = parsedate_to_datetime(header).timestamp()
        assert retry_after_seconds(header, at - 30) == 30.0
        assert retry_after_seconds(header, at + 30) == 0.0  # a date in the past: go now
    else:
        assert retry_after_seconds(header, WALL) == seconds


@given(
    rpm=st.integers(1, 6000),
    burst=st.integers(1, 50),
    steps=st.lists(st.floats(0, 2.0, allow_nan=False), min_size=1, max_size=300),
)
def test_requests_never_exceed_the_burst_plus_the_rate(rpm, burst, steps):
    """A sender that sends whenever `ready_at` allows, at any times, never
    goes past burstSize + requestsPerMinute/60 x elapsed."""
    p = policy(rpm=rpm, burst=burst, now=0.0)
    now, sent = 0.0, 0
    for step in steps:
        now += step
        while p.ready_at(now) <= now:
            p.sent(now)
            sent += 1
        assert sent <= burst + rpm / 60 * now + 1e-6
    assert p.ready_at(now) > now  # and it really is holding back


def test_an_unlimited_rate_never_waits():
    p = policy(rpm=0)
    for _ in range(1000):
        assert p.ready_at(5.0) == 5.0
        p.sent(5.0)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_fatal_and_names_where_it_points(status):
    decision = answer(policy(), status, location="https://api.example/v2/tasks/t/logs")
    assert isinstance(decision, Fail) and decision.fatal
    assert "https://api.example/v2/tasks/t/logs" in decision.why and "api.url" in decision.why
