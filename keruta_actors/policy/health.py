"""What /health and the liveness endpoint answer (SPEC §8).

/health is the design document's report: three checks (websocket, api,
memory), each `{healthy, message, latency, error}`, and "unhealthy" with 503
as soon as one of them is. So an agent whose WebSocket is down reports 503
even while REST or the spool carry its records: the report says what is
wrong, and the message says where the records go meanwhile.

One exception: a *retired* WebSocket (the server answered the handshake with
an HTTP status: it serves no log WebSocket, as the keruta API deployed today)
while REST carries the records is healthy. REST is then the way that server
takes logs, not a fallback from a failure, and a /health that answered 503
for every run against it would say nothing. The check's message still says
so. (The `websocket_status` alert signal stays literal: `retired` is not
`connected`; see the README.)

/health answers from the checks' last results (`Snapshot`), which the health
checker actor refreshes; the HTTP thread never waits on a check. A snapshot
not refreshed within `stale_after` seconds answers 503 for every check.

Liveness is another question: do the agent's actors still answer? An agent
falling back to REST or to the spool is alive and must not be restarted, so
liveness looks at nothing but the actors' replies. Container health checks
and Kubernetes liveness probes ask it; /health is for people, readiness and
dashboards.

Latencies are seconds, as in the metrics; timestamps are RFC 3339 UTC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping

from keruta_actors.policy.memory import MemoryReading
from keruta_actors.records import rfc3339

CHECKS = ("websocket", "api", "memory")
OK, UNAVAILABLE = 200, 503


@dataclass(frozen=True, slots=True)
class Check:
    healthy: bool
    message: str
    latency: float = 0.0  # seconds the check took
    error: str = ""


def health_report(checks: Mapping[str, Check], now: float) -> tuple[int, dict]:
    """The HTTP status and the JSON body of /health. A check not run yet
    counts as unhealthy: the agent cannot vouch for it."""
    results = {name: checks.get(name, Check(False, "not checked yet")) for name in CHECKS}
    healthy = all(check.healthy for check in results.values())
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": rfc3339(now),
        "checks": {name: asdict(check) for name, check in results.items()},
    }
    return (OK if healthy else UNAVAILABLE), body


def websocket_check(status: str, transport: str, down_since: float | None, now: float) -> Check:
    """`status` as in conditions.WEBSOCKET_STATUSES; `transport` the one
    records go to now (websocket, rest or spool)."""
    if status == "connected":
        return Check(True, "connected")
    if status == "retired" and transport == "rest":
        return Check(True, "retired: the server serves no log WebSocket here; records go over REST")
    how_long = f" for {now - down_since:.0f}s" if down_since is not None else ""
    where = {"rest": "records go over REST", "spool": "records wait in the spool"}.get(transport, "")
    return Check(False, f"{status}{how_long}" + (f"; {where}" if where else ""), error=status)


def api_check(status_code: int | None, latency: float, error: str = "") -> Check:
    """The keruta API's health endpoint: healthy on a 2xx answer.
    `status_code` None means no answer (error says why)."""
    if status_code is not None and 200 <= status_code < 300:
        return Check(True, f"HTTP {status_code}", latency)
    if status_code is not None:
        return Check(False, f"HTTP {status_code}", latency, error or f"HTTP {status_code}")
    return Check(False, "no answer", latency, error or "no answer")


def memory_check(reading: MemoryReading, latency: float = 0.0) -> Check:
    """Unhealthy only above performance.memoryLimitMB (policy/memory.py)."""
    message = reading.describe()
    return Check(reading.healthy, message, latency, "" if reading.healthy else "above the memory limit")


def liveness_report(replied_at: Mapping[str, float | None], now: float, stale_after: float) -> tuple[int, dict]:
    """Alive while every actor has replied to a ping within `stale_after`
    seconds. `replied_at` maps each actor's name to its last reply (None:
    never replied)."""
    silent = sorted(name for name, at in replied_at.items() if at is None or now - at > stale_after)
    body = {
        "status": "dead" if silent else "alive",
        "timestamp": rfc3339(now),
        "silent": silent,
    }
    return (UNAVAILABLE if silent else OK), body


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the HTTP thread answers from: the checks' last results and when
    the actors last answered (wall-clock seconds). Immutable; the health
    checker swaps in a new one whole."""

    checks: tuple[tuple[str, Check], ...] = ()
    checked_at: float | None = None  # when the checks were last refreshed
    replied_at: float | None = None  # the actors' last round trip

    def health(self, now: float, stale_after: float) -> tuple[int, dict]:
        checks = dict(self.checks)
        if self.checked_at is not None and now - self.checked_at > stale_after:
            stale = f"not checked for {now - self.checked_at:.0f}s: the agent's actors do not answer"
            checks = {name: replace(check, healthy=False, error=stale) for name, check in checks.items()}
        return health_report(checks, now)

    def liveness(self, now: float, stale_after: float) -> tuple[int, dict]:
        return liveness_report({"actors": self.replied_at}, now, stale_after)
