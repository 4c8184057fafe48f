"""When the REST fallback may send, and what each answer means (SPEC §5).

`RestPolicy` is the whole decision: the REST connection asks `ready_at` when
its next request may go, tells `sent` that it went, and hands each outcome (an
HTTP status, or None for a timeout or a failed connection) to `answered`,
which says what to do:

- 200/201: `Stored`.
- 404, 405, 500 or 501 from the batch endpoint: `OneByOne`; the same records
  go again, one per request. If the single endpoint then stores one, the
  server has no batch endpoint (the deployed keruta API answers 500 there):
  `Stored(no_batch_endpoint=True)`, and batch is not tried again this run. If
  the single endpoint fails too, the server is failing as a whole: the batch
  endpoint is tried again on the next retry. From the single endpoint, 404
  means the task is unknown: `Fail`, fatal.
- 401/403: `Fail`, fatal: new credentials need a restart, so retrying would
  only hammer the server.
- 3xx: `Fail`, fatal: redirects are not followed (a POST would turn into a
  GET, and credentials would go to another host); api.url needs changing.
- 429: `Wait` as long as Retry-After says (else the backoff); this does not
  count against `retryCount`, the server is alive and asked for patience.
- 413: `Split` the request, or `Reject` a single record that is too large.
- other 4xx: `Reject`: the server will never take these records; they are
  counted as not delivered.
- 5xx, timeouts and refused connections: `Wait` and retry, `retryCount` times,
  `retryInterval` apart with exponential backoff and jitter; then `Fail`.

Requests are bounded by `api.rateLimit` with a token bucket: `burstSize`
requests at once, refilled at `requestsPerMinute`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Iterator

from keruta_actors.policy.backoff import Uniform, retry_delays
from keruta_actors.policy.rate_limit import TokenBucket


@dataclass(frozen=True, slots=True)
class Stored:
    """The server stored the request; `no_batch_endpoint` when this showed
    that it has no batch endpoint."""

    no_batch_endpoint: bool = False


@dataclass(frozen=True, slots=True)
class Wait:
    """Send the same request again at `until`."""

    until: float
    why: str


@dataclass(frozen=True, slots=True)
class OneByOne:
    """The batch endpoint failed: send the records one per request."""

    why: str


@dataclass(frozen=True, slots=True)
class Split:
    """The request was too large: send it again in smaller parts."""


@dataclass(frozen=True, slots=True)
class Reject:
    """The server refused these records for good."""

    why: str


@dataclass(frozen=True, slots=True)
class Fail:
    """This transport cannot go on; `fatal` means trying it again cannot help."""

    why: str
    fatal: bool


Decision = Stored | Wait | OneByOne | Split | Reject | Fail


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came back for one request. `status` is None when no response came
    (timeout, refused connection); `problem` then says what happened."""

    status: int | None
    problem: str = ""
    retry_after: str | None = None  # the header, verbatim
    code: str = ""  # the error code in the body, if any
    fatal: bool = False  # no response, and retrying cannot help (a rejected certificate)
    location: str = ""  # where a redirect points


# Answers from the batch endpoint that may mean the server has none.
BATCH_MISSING = frozenset({404, 405, 500, 501})


class RestPolicy:
    def __init__(
        self,
        retry_count: int,
        retry_interval: float,
        requests_per_minute: int,
        burst_size: int,
        rng: Uniform,
        now: float,
        cap: float = 60.0,
    ) -> None:
        self.retry_count = retry_count
        self._retry_interval = retry_interval
        self._rng = rng
        self._cap = cap
        self._bucket = TokenBucket(requests_per_minute / 60.0, burst_size, now)
        self._not_before = now  # set by a Wait
        self.failures = 0  # in a row, for the request being retried
        self.batch_endpoint = True
        # The batch endpoint failed and single records are being tried: one
        # stored shows that the server has no batch endpoint.
        self._batch_in_doubt = False
        self._delays = self._fresh_delays()

    def ready_at(self, now: float) -> float:
        """The earliest time the next request may go."""
        return max(self._not_before, now + self._bucket.time_until(1, now))

    def sent(self, now: float) -> None:
        self._bucket.grant(1, now)

    def answered(self, outcome: Outcome, records: int, now: float, wall_now: float) -> Decision:
        status = outcome.status
        if status is not None and 200 <= status < 300:
            self.failures = 0
            self._delays = self._fresh_delays()
            in_doubt, self._batch_in_doubt = self._batch_in_doubt, False
            return Stored(no_batch_endpoint=in_doubt)
        if self.batch_endpoint and status in BATCH_MISSING:
            self.batch_endpoint = False
            self._batch_in_doubt = True
            return OneByOne(f"HTTP {status}{_code(outcome)}")
        if self._batch_in_doubt and (status is None or status >= 500):
            # The server fails as a whole; it may have a batch endpoint after all.
            self.batch_endpoint, self._batch_in_doubt = True, False
        if outcome.fatal:
            return Fail(outcome.problem, True)
        if status is not None and 300 <= status < 400:
            where = outcome.location or "an address it did not give"
            return Fail(f"the keruta API redirected the request (HTTP {status}) to {where}; set api.url to it", True)
        if status in (401, 403):
            why = f"the keruta API refused the credentials (HTTP {status}); check auth.token or auth.apiKey"
            return Fail(why, True)
        if status == 404:
            return Fail(f"the keruta API does not know this task (HTTP 404{_code(outcome)})", True)
        if status == 405:
            return Fail("the keruta API does not accept logs at this URL (HTTP 405); check api.url", True)
        if status == 413:
            return Split() if records > 1 else Reject("a record too large for the server (HTTP 413)")
        if status == 429:
            why = f"rate limited by the server (HTTP 429{_code(outcome)})"
            return self._wait(now, why, outcome.retry_after, wall_now)
        if status is not None and 400 <= status < 500:
            return Reject(f"HTTP {status}{_code(outcome)}")
        why = f"HTTP {status}{_code(outcome)}" if status is not None else outcome.problem
        self.failures += 1
        if self.failures > self.retry_count:
            self.failures = 0
            self._delays = self._fresh_delays()
            return Fail(f"{why} ({self.retry_count + 1} tries)", False)
        return self._wait(now, why, None, wall_now)

    def _wait(self, now: float, why: str, retry_after: str | None, wall_now: float) -> Wait:
        delay = retry_after_seconds(retry_after, wall_now)
        if delay is None:
            delay = next(self._delays)
        self._not_before = now + delay
        return Wait(self._not_before, why)

    def _fresh_delays(self) -> Iterator[float]:
        return retry_delays(self._retry_interval, self._rng, self._cap)


def retry_after_seconds(value: str | None, wall_now: float) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date),
    or None when it is missing or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # HTTP dates are GMT; one without a zone is not one
    return max(0.0, when.timestamp() - wall_now)


def _code(outcome: Outcome) -> str:
    return f" {outcome.code}" if outcome.code else ""
