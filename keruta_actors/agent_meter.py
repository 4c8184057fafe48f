"""The agent's meter: what every actor's call to `meter.current()` counts
into when monitoring is on (meter.py is the hook; this is the real thing).

Every call is per chunk or per event, never per record, and is made on the
loop's thread, where every actor runs. Besides the metrics (telemetry.py),
the meter keeps what the health checker and the alert evaluator read, on
that same thread: the link's state (policy/link_state.py), the alert
signals' windows (policy/signals.py), the last memory reading, the buffer's
fill and the spool's size. The monitoring HTTP thread reads only the
registry (which locks) and `health`, an immutable snapshot that the health
checker swaps in whole.

error_rate counts failed operations against confirmed batches: a lost
link, a failed REST request, a batch the server refused (a webhook that
fails is an error, but not of delivery, so it is not counted there).
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

from prometheus_client import CollectorRegistry

from keruta_actors.policy.health import Snapshot
from keruta_actors.policy.link_state import REST, WEBSOCKET, LinkState
from keruta_actors.policy.signals import ErrorRate, Latency
from keruta_actors.records import RecordBlock
from keruta_actors.telemetry import (
    build_metrics,
    count_error,
    count_not_shipped,
    count_read,
    count_reconnect,
    count_sent,
    observe_delivered,
    set_alert,
    set_transport,
    set_websocket_status,
)

# Error types that are failed delivery operations, for error_rate.
DELIVERY_ERRORS = frozenset({"websocket", "api", "spool", "invalid_log_format", "rate_limit_exceeded",
                             "unauthorized", "task_not_found", "database_error"})
ERROR_TYPE_OF_LINK = {WEBSOCKET: "websocket", REST: "api"}


class Meter:
    def __init__(self, registry: CollectorRegistry, task_id: str, groups: Iterable[str],
                 memory_limit_bytes: int, now: float) -> None:
        self.registry = registry
        self.metrics = build_metrics(registry, task_id, groups)
        self.metrics.memory_limit.set(memory_limit_bytes)
        self.link = LinkState(now)
        self.error_rate = ErrorRate()
        self.latency = Latency()
        self.memory_reading = None  # policy.memory.MemoryReading, the last one
        self.buffer_used = self.buffer_capacity = 0
        self.spool_bytes = 0
        self.health = Snapshot()

    # -- records: once per chunk -----------------------------------------------------------

    def read(self, block: RecordBlock | None) -> None:
        if block is not None:
            count_read(self.metrics, block)

    def not_shipped(self, counts: Iterable[tuple[str, int]]) -> None:
        """Records not shipped on purpose, as ((reason, count), ...)."""
        if counts:
            count_not_shipped(self.metrics, dict(counts))

    def delivered(self, batches: Sequence[RecordBlock], confirmed_at: float) -> None:
        """Batches whose delivery was confirmed at `confirmed_at` (epoch seconds)."""
        if batches:
            self.latency.add(observe_delivered(self.metrics, batches, confirmed_at), confirmed_at)

    def sent(self, transport: str, batches: int, size: int) -> None:
        """The server confirmed `batches` batches, `size` bytes on the wire."""
        if batches:
            count_sent(self.metrics, transport, batches, size)
            self.error_rate.add(time.time(), succeeded=batches)

    def error(self, kind: str, count: int = 1) -> None:
        count_error(self.metrics, kind, count)
        if kind in DELIVERY_ERRORS:
            self.error_rate.add(time.time(), failed=count)

    # -- state ----------------------------------------------------------------------------------

    def buffer(self, used: int, capacity: int) -> None:
        """Records held in memory and not yet handed to a connection, and the cap."""
        if (used, capacity) != (self.buffer_used, self.buffer_capacity):
            self.buffer_used, self.buffer_capacity = used, capacity
            self.metrics.buffer.labels("used").set(used)
            self.metrics.buffer.labels("capacity").set(capacity)

    def memory(self, reading) -> None:
        self.memory_reading = reading
        self.metrics.memory.set(reading.pss_bytes)

    def spool(self, size: int, records: int) -> None:
        """What waits in the durable spool (its owner reports it)."""
        self.spool_bytes = size
        self.metrics.spool_bytes.set(size)
        self.metrics.spool_records.set(records)

    def alert(self, rule: str, severity: str, firing: bool) -> None:
        set_alert(self.metrics, rule, severity, firing)

    # -- the link, as the supervisor runs it ------------------------------------------------------

    def link_started(self, kind: str) -> None:
        if self.link.started(kind):
            count_reconnect(self.metrics, kind)
        set_websocket_status(self.metrics, self.link.status)

    def link_up(self, kind: str) -> None:
        self.link.up(kind)
        set_websocket_status(self.metrics, self.link.status)

    def link_lost(self, kind: str, fatal: bool = False, unserved: bool = False) -> None:
        self.link.lost(kind, time.time(), fatal, unserved)
        set_websocket_status(self.metrics, self.link.status)
        self.error(ERROR_TYPE_OF_LINK.get(kind, "other"))

    def using(self, kind: str | None) -> None:
        self.link.using(kind)
        set_transport(self.metrics, self.link.transport)

    # -- for the alert evaluator ----------------------------------------------------------------

    def signals(self, now: float) -> dict[str, float | str | None]:
        """The alert signals' values now (conditions.SIGNALS); None: no value yet."""
        reading = self.memory_reading
        return {
            "error_rate": self.error_rate.value(now),
            "latency": self.latency.value(now),
            "memory_usage": reading.fraction if reading is not None else None,
            "websocket_status": self.link.status,
            "buffer_usage": self.buffer_used / self.buffer_capacity if self.buffer_capacity else None,
            "spool_bytes": float(self.spool_bytes),
        }
