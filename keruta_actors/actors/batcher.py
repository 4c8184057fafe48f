"""The batching stage, and the keeper of what is delivered.

Records are cut into wire batches by `policy.batching.BatchPolicy`: a full
batch goes at once; a partial one goes when the link is idle (low latency) or
when its oldest record has waited `flushInterval` (so under load, records
accumulate into full batches). Every batch handed to a connection stays in the
`DeliveryLedger` until the server confirms it, and goes to the next connection
again if this one fails first.

While more records wait here than the adaptive buffer allows, upstream is
held back. When the final chunk has arrived and everything is confirmed, the
supervisor hears `Drained`.
"""

from __future__ import annotations

import time
from collections import Counter, deque

from keruta_actors import meter
from keruta_actors.actors.stage import Stage
from keruta_actors.messages import (
    Batches,
    BatchesAcked,
    Chunk,
    Configure,
    Delivered,
    DeliveryReport,
    Drained,
    ReportDelivery,
    UseConnection,
)
from keruta_actors.policy.adaptive_buffer import AdaptiveBuffer, buffer_cap_for_memory
from keruta_actors.policy.batching import BatchPolicy
from keruta_actors.policy.delivery import DeliveryLedger, StreamProgress
from keruta_actors.policy.flow import marks_of
from keruta_actors.records import RecordBlock

# Bytes one wire batch may carry: well under common WebSocket message limits.
MAX_BATCH_BYTES = 256 * 1024
# Batches handed to the connection and not yet confirmed.
MAX_IN_FLIGHT_BATCHES = 256
# Batches per message to the connection: one hop's cost is shared by all.
BATCHES_PER_MESSAGE = 128
# Partial batches go out while fewer batches than this are unconfirmed. The
# reader has already gathered a linger's worth of lines into each chunk;
# holding its last partial batch for a round trip as well would add that
# round trip to every line's latency. Under load, batches are full anyway.
FREE_IN_FLIGHT = 4
# How often, at most, delivery progress goes to the supervisor.
PROGRESS_INTERVAL = 1.0


class Batcher(Stage):
    def on_configure(self, message: Configure) -> None:
        streaming = message.settings.log_streaming
        self.policy = BatchPolicy(streaming.batch_size, streaming.flush_interval, MAX_BATCH_BYTES)
        self.ledger = DeliveryLedger(MAX_IN_FLIGHT_BATCHES)
        self.buffer = AdaptiveBuffer(
            streaming.buffer_size,
            buffer_cap_for_memory(streaming.performance.memory_limit_mb),
        )
        self.ready: deque[RecordBlock] = deque()  # batches cut, waiting for room in flight
        self.ready_records = 0
        self.connection = None
        self.sent_to_connection = 0
        self.draining = False
        self.drained_sent = False
        self.progress = StreamProgress()
        self.done_above: dict = {}
        self.progress_sent: dict = {}
        self.progress_due = 0.0

    def on_chunk(self, chunk: Chunk) -> None:
        if chunk.block is not None:
            self.policy.offer(chunk.block, time.monotonic())
        self.progress.passed(marks_of(chunk.block, chunk.through))
        for stream, lines in self.dropped:  # counted by the stages upstream, or here
            self.progress.dropped(stream, lines)
        self.dropped = []
        self.draining = self.draining or chunk.final
        self.buffer.adjust(self.waiting())
        meter.current().not_shipped(by_reason(chunk.not_shipped).items())  # counted upstream, reported once, here
        self._dispatch(time.monotonic())
        self._report_progress(time.monotonic())

    def holding_back(self) -> bool:
        return self.waiting() >= self.buffer.size

    def on_relieve_memory(self) -> None:
        # Upstream then waits, and records pile up in the child's pipe (or,
        # once it exists, the spool) instead of this process.
        self.buffer.shrink()

    def waiting(self) -> int:
        """Records held here and not yet handed to a connection."""
        return self.policy.pending() + self.ready_records

    def on_tick(self, now: float) -> None:
        self._dispatch(now)
        self._report_progress(now)
        self.settle_upstream()

    def receiveMsg_UseConnection(self, message: UseConnection, sender) -> None:
        self.connection = message.connection
        self.sent_to_connection = 0
        if self.connection is not None:
            self._send(self.ledger.unacked())
            self._dispatch(time.monotonic())

    def receiveMsg_BatchesAcked(self, message: BatchesAcked, sender) -> None:
        confirmed = self.ledger.acked(message.batch_ids, time.time(), dict(message.rejected))
        for stream, count in confirmed.rejected_by_stream:
            self.not_shipped[(*stream, "rejected_by_server")] += count
        if confirmed.rejected:
            meter.current().not_shipped((("rejected_by_server", confirmed.rejected),))
        meter.current().delivered(confirmed.batches, confirmed.confirmed_at)
        self._report_progress(time.monotonic())
        self._dispatch(time.monotonic())
        self.settle_upstream()

    def receiveMsg_ReportDelivery(self, message: ReportDelivery, sender) -> None:
        self.send(
            sender,
            DeliveryReport(
                delivered=self.ledger.delivered,
                undelivered=self.ledger.undelivered + self.waiting(),
                filtered=by_reason(self.not_shipped.items()),
                delivered_by_stream=tuple(self.ledger.delivered_by_stream.items()),
                not_shipped=tuple(self.not_shipped.items()),
                watermarks=tuple(self._watermarks().items()),
                done_above=tuple(self.done_above.items()),
            ),
        )

    def _dispatch(self, now: float) -> None:
        if self.connection is not None:
            link_free = self.ledger.in_flight < FREE_IN_FLIGHT and not self.ready
            for batch in self.policy.take(now, link_free=link_free, draining=self.draining):
                self.ready.append(batch)
                self.ready_records += len(batch)
            handed = [self.ready.popleft() for _ in range(min(self.ledger.room, len(self.ready)))]
            if handed:
                self.ready_records -= sum(len(batch) for batch in handed)
                self._send(self.ledger.open(handed))
            # Only a connection can act on a deadline: without one, a past
            # deadline would wake this actor again at once, forever.
            deadline = self.policy.next_deadline()
            if deadline is not None:
                self.wake_at(deadline)
        meter.current().buffer(self.waiting(), self.buffer.size)
        self._report_if_drained()

    def _send(self, numbered: list) -> None:
        for start in range(0, len(numbered), BATCHES_PER_MESSAGE):
            self.sent_to_connection += 1
            self.send(self.connection, Batches(self.sent_to_connection, tuple(numbered[start : start + BATCHES_PER_MESSAGE])))

    def _watermarks(self) -> dict:
        outstanding = (*self.ledger.firsts(), *((b.stream, b.line_numbers[0]) for b in self.ready if len(b)),
                       *self.policy.firsts())
        watermarks = self.progress.watermarks(outstanding)
        self.done_above = dict(Counter(self.ledger.done_above(watermarks)) +
                               Counter(self.progress.dropped_above(watermarks)))
        return watermarks

    def _report_progress(self, now: float) -> None:
        """Tell the supervisor each stream's watermark, at most once per
        PROGRESS_INTERVAL (the spool forgets what is below it, tailed files
        commit their offsets on it)."""
        if now < self.progress_due:
            self.wake_at(self.progress_due)
            return
        watermarks = self._watermarks()
        if watermarks == self.progress_sent:
            return
        self.progress_sent = watermarks
        self.progress_due = now + PROGRESS_INTERVAL
        self.send(self.configured.supervisor, Delivered(tuple(watermarks.items())))

    def _report_if_drained(self) -> None:
        if self.draining and not self.drained_sent and self.waiting() == 0 and self.ledger.in_flight == 0:
            self.drained_sent = True
            self.progress_due = 0.0  # the last word on progress goes out before the run ends
            self._report_progress(time.monotonic())
            self.send(self.configured.supervisor, Drained(self.ledger.delivered))


def by_reason(counts) -> dict[str, int]:
    """Not-shipped counts keyed (namespace, source, reason), summed by reason."""
    summed: dict[str, int] = {}
    for (_, _, reason), count in counts:
        summed[reason] = summed.get(reason, 0) + count
    return summed
