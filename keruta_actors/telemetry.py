"""Every metric the agent exports, built by one function on one registry
(SPEC §8, STYLE habit 9). The actors share a process, so one registry serves
them all; tests build a fresh CollectorRegistry().

Counting is per chunk, never per record: a chunk's levels are counted with
bytes.count, and its latencies are bucketed by sorting its timestamps once
(signals.bucket_counts_since), which is far cheaper per record than
prometheus_client's Histogram.observe; hence `ChunkHistogram`. The labelled
children the hot path counts into are looked up once, at build time.

Label values are bounded: sources and levels are the records module's, the
other labels take values from the tuples below, and anything else is counted
as "other". task_id is one value per agent (one agent runs per task).

`monitoring.metrics` selects groups (the design document's names); a group
left out is still counted, on a registry nobody reads, so callers never
branch. Metrics outside the groups are always exported.
"""

from __future__ import annotations

import math
from array import array
import platform
import threading
from dataclasses import dataclass, replace
from itertools import accumulate
from typing import Iterable, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, disable_created_metrics
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from keruta_actors import __version__
from keruta_actors.policy.conditions import WEBSOCKET_STATUSES
from keruta_actors.policy.signals import LATENCY_BUCKETS, bucket_counts, bucket_counts_since
from keruta_actors.records import LEVELS, SOURCE_CODE, SOURCES, RecordBlock

GROUPS = {
    "logCount": ("logs", "not_shipped", "sent_batches", "sent_bytes"),
    "errorRate": ("errors", "reconnects"),
    "latency": ("latency",),
    "memoryUsage": ("memory", "memory_limit"),
}
NOT_SHIPPED_REASONS = ("below_level", "excluded", "not_included", "rate_limited",
                       "rejected_by_server", "stage_failure", "other")
# where an error happened; then the server's `error` frames, by code (SPEC §5)
ERROR_TYPES = ("websocket", "api", "spool", "stage", "webhook",
               "unauthorized", "rate_limit_exceeded", "invalid_log_format", "task_not_found",
               "websocket_connection_failed", "database_error", "other")
LINKS = ("websocket", "rest")
TRANSPORTS = (*LINKS, "spool")  # spool: neither link is usable, records wait on disk
BUFFER_TYPES = ("used", "capacity")  # records held in memory, and the buffer's current cap
OTHER = "other"


class ChunkHistogram(Collector):
    """A histogram with one label, fed a chunk of observations at a time."""

    def __init__(self, name: str, documentation: str, label: str, bounds: Sequence[float]) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.bounds = tuple(bounds)
        self._counts: dict[str, list[int]] = {}  # per label value, per bucket (last: above every bound)
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()  # a scrape may run on another thread

    def observe(self, value: str, samples: Sequence[float]) -> list[int]:
        """Add the samples; their bucket counts, for signals.Latency too."""
        counts = bucket_counts(samples, self.bounds)
        self._add(value, counts, math.fsum(samples))
        return counts

    def observe_since(self, value: str, stamps: Sequence[float], now: float) -> list[int]:
        """Add the latencies `now - stamp` of these stamps; their bucket counts."""
        counts, total = bucket_counts_since(stamps, now, self.bounds)
        self._add(value, counts, total)
        return counts

    def _add(self, value: str, counts: list[int], total: float) -> None:
        with self._lock:
            totals = self._counts.setdefault(value, [0] * len(counts))
            for index, count in enumerate(counts):
                totals[index] += count
            self._sums[value] = self._sums.get(value, 0.0) + total

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=[self.label])]

    def collect(self) -> list[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        with self._lock:
            for value, counts in self._counts.items():
                les = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]
                family.add_metric([value], list(zip(les, accumulate(counts))), self._sums[value])
        return [family]


@dataclass(frozen=True, slots=True)
class Metrics:
    task_id: str
    logs: Counter
    not_shipped: Counter
    sent_batches: Counter
    sent_bytes: Counter
    errors: Counter
    reconnects: Counter
    latency: ChunkHistogram
    memory: Gauge
    memory_limit: Gauge
    buffer: Gauge
    websocket_status: Gauge
    transport: Gauge
    spool_bytes: Gauge
    spool_records: Gauge
    alerts_firing: Gauge
    # keruta_logs_total's children, by source code then level rank: the hot
    # path's label lookups, done once
    logs_by_code: tuple = ()


def build_metrics(registry: CollectorRegistry, task_id: str, groups: Iterable[str]) -> Metrics:
    """Every metric, registered on `registry` if its group is in `groups`."""
    # *_created series would double the exposition and tell nothing here:
    # the agent's start time is the same for every metric. (Process-wide.)
    disable_created_metrics()
    groups = set(groups)
    if groups - GROUPS.keys():
        raise ValueError(f"unknown metric groups {sorted(groups - GROUPS.keys())}; known: {list(GROUPS)}")
    unread = CollectorRegistry()
    chosen = {name for group in groups for name in GROUPS[group]}

    def on(name: str) -> CollectorRegistry:
        return registry if name in chosen else unread

    latency = ChunkHistogram("keruta_log_latency_seconds",
                             "Seconds from a line being read to its delivery being confirmed", "source",
                             LATENCY_BUCKETS)
    on("latency").register(latency)
    Info("keruta_build", "The agent's version", registry=registry).info(
        {"version": __version__, "python": platform.python_version()})
    metrics = Metrics(
        task_id=task_id,
        logs=Counter("keruta_logs_total", "Records read, by source and detected level",
                     ["source", "level", "task_id"], registry=on("logs")),
        not_shipped=Counter("keruta_logs_not_shipped_total", "Records not shipped on purpose, by reason",
                            ["reason"], registry=on("not_shipped")),
        sent_batches=Counter("keruta_sent_batches_total", "Batches the server confirmed, by transport",
                             ["transport"], registry=on("sent_batches")),
        sent_bytes=Counter("keruta_sent_bytes_total", "Bytes of confirmed batches, by transport",
                           ["transport"], registry=on("sent_bytes")),
        errors=Counter("keruta_errors_total", "Errors, by where they happened", ["type"],
                       registry=on("errors")),
        reconnects=Counter("keruta_reconnects_total", "Connections started again after a failure",
                           ["transport"], registry=on("reconnects")),
        latency=latency,
        memory=Gauge("keruta_memory_pss_bytes", "The agent's memory: summed PSS of its processes",
                     registry=on("memory")),
        memory_limit=Gauge("keruta_memory_limit_bytes", "performance.memoryLimitMB, in bytes",
                           registry=on("memory_limit")),
        buffer=Gauge("keruta_buffer_size", "Records held in memory (used) and the buffer's cap (capacity)",
                     ["type"], registry=registry),
        websocket_status=Gauge("keruta_websocket_status", "1 for the WebSocket's current status, else 0",
                               ["status"], registry=registry),
        transport=Gauge("keruta_transport_active", "1 for the transport records go to now, else 0",
                        ["transport"], registry=registry),
        spool_bytes=Gauge("keruta_spool_bytes", "Bytes waiting in the durable spool", registry=registry),
        spool_records=Gauge("keruta_spool_records", "Records waiting in the durable spool",
                            registry=registry),
        alerts_firing=Gauge("keruta_alerts_firing", "1 while an alert rule fires, else 0",
                            ["rule", "severity"], registry=registry),
    )
    _start_at_zero(metrics)
    by_code = tuple(tuple(metrics.logs.labels(source, level, task_id) for level in LEVELS) for source in SOURCES)
    return replace(metrics, logs_by_code=by_code)


def _start_at_zero(m: Metrics) -> None:
    # Every bounded series exists from the start, so rate() and PromQL
    # comparisons see a 0 rather than nothing.
    for source in SOURCES:
        for level in LEVELS:
            m.logs.labels(source, level, m.task_id)
    for reason in NOT_SHIPPED_REASONS:
        m.not_shipped.labels(reason)
    for transport in LINKS:
        m.sent_batches.labels(transport)
        m.sent_bytes.labels(transport)
        m.reconnects.labels(transport)
    for kind in ERROR_TYPES:
        m.errors.labels(kind)
    for kind in BUFFER_TYPES:
        m.buffer.labels(kind)
    set_websocket_status(m, "connecting")
    set_transport(m, "websocket")


def _bounded(value: str, allowed: Sequence[str]) -> str:
    return value if value in allowed else OTHER


# --- what the actors call, once per chunk or per event -------------------------------------


def count_read(m: Metrics, block: RecordBlock) -> None:
    """keruta_logs_total: the records of a chunk just read."""
    for _, code in _sources_in(block):
        levels = _of_source(block, code, block.levels)
        children = m.logs_by_code[code]
        if levels.count(levels[0]) == len(levels):  # the usual case: one level
            children[levels[0]].inc(len(levels))
            continue
        for rank, child in enumerate(children):
            if count := levels.count(rank):
                child.inc(count)


def observe_delivered(m: Metrics, blocks: RecordBlock | Sequence[RecordBlock], confirmed_at: float) -> list[int]:
    """keruta_log_latency_seconds: chunks whose delivery was confirmed at
    `confirmed_at` (epoch seconds, as the blocks' timestamps), bucketed once
    per source for all of them. Returns the bucket counts over all sources,
    for signals.Latency.add."""
    blocks = [blocks] if isinstance(blocks, RecordBlock) else blocks
    # the columns of all blocks at once, joined in C: no Python step per block
    sources = b"".join([block.sources for block in blocks])
    if not sources:
        return [0] * (len(LATENCY_BUCKETS) + 1)
    stamps = array("d", b"".join([block.timestamps.tobytes() for block in blocks]))
    if sources.count(sources[0]) == len(sources):  # the usual case: one source
        return m.latency.observe_since(SOURCES[sources[0]], stamps, confirmed_at)
    totals = [0] * (len(LATENCY_BUCKETS) + 1)
    for code in set(sources):
        of_source = [stamp for stamp, at in zip(stamps, sources) if at == code]
        counts = m.latency.observe_since(SOURCES[code], of_source, confirmed_at)
        totals = [a + b for a, b in zip(totals, counts)]
    return totals


def count_not_shipped(m: Metrics, by_reason: Mapping[str, int]) -> None:
    for reason, count in by_reason.items():
        m.not_shipped.labels(_bounded(reason, NOT_SHIPPED_REASONS)).inc(count)


def count_sent(m: Metrics, transport: str, batches: int, size: int) -> None:
    """A confirmed delivery of `batches` batches holding `size` bytes."""
    m.sent_batches.labels(_bounded(transport, LINKS)).inc(batches)
    m.sent_bytes.labels(_bounded(transport, LINKS)).inc(size)


def count_reconnect(m: Metrics, transport: str) -> None:
    m.reconnects.labels(_bounded(transport, LINKS)).inc()


def count_error(m: Metrics, kind: str, count: int = 1) -> None:
    m.errors.labels(_bounded(kind, ERROR_TYPES)).inc(count)


def set_websocket_status(m: Metrics, status: str) -> None:
    for known in WEBSOCKET_STATUSES:
        m.websocket_status.labels(known).set(1 if known == status else 0)


def set_transport(m: Metrics, transport: str) -> None:
    for known in TRANSPORTS:
        m.transport.labels(known).set(1 if known == transport else 0)


def set_alert(m: Metrics, rule: str, severity: str, firing: bool) -> None:
    """Call once per configured rule at start (firing=False), then on each
    AlertFired / AlertResolved: rules come from the configuration, so bounded."""
    m.alerts_firing.labels(rule, severity).set(1 if firing else 0)


def _sources_in(block: RecordBlock) -> list[tuple[str, int]]:
    return [(source, SOURCE_CODE[source]) for source in SOURCES if SOURCE_CODE[source] in block.sources]


def _of_source(block: RecordBlock, code: int, column: Sequence) -> Sequence:
    """One source's values of a column: most chunks hold a single source,
    whose column is then taken whole rather than filtered record by record."""
    if block.sources.count(code) == len(block.sources):
        return column
    return [value for at, value in zip(block.sources, column) if at == code]
