"""When the batcher cuts a batch and sends it (SPEC §7).

A batch goes out when it is full (`batch_size` records, or as many as fit in
`max_batch_bytes`), when its oldest record has waited `flush_interval`, when
the link is idle (nothing in flight: a lone record goes at once, low latency)
or when the agent drains. Under load the link is busy, so records accumulate
into full batches (high throughput).

The actor feeds records in with `offer`, calls `take` after every offer, ack
and wakeup, and sets its next wakeup at `next_deadline()`.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from keruta_actors.records import MESSAGE, Record

# A LogMessage's bytes besides its text: JSON keys, id, taskId, timestamp,
# source, level, lineNumber and the source's metadata (pid, command, host,
# agent version). LogMessageEncoder writes ~290 for a typical empty line.
RECORD_OVERHEAD_BYTES = 300


def estimated_size(record: Record) -> int:
    """Roughly how many bytes the record adds to an encoded batch.

    Counts the message in characters, not encoded bytes: exact for ASCII,
    low for other text and JSON escapes, so `max_batch_bytes` should sit
    below the server's frame limit with room to spare. Encoding every line
    just to measure it would cost more than the estimate is worth.
    """
    return len(record[MESSAGE]) + RECORD_OVERHEAD_BYTES


class BatchPolicy:
    def __init__(self, batch_size: int, flush_interval: float, max_batch_bytes: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_interval < 0:
            raise ValueError(f"flush_interval must be >= 0, got {flush_interval}")
        if max_batch_bytes < 1:
            raise ValueError(f"max_batch_bytes must be >= 1, got {max_batch_bytes}")
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_batch_bytes = max_batch_bytes
        # (record, its flush deadline), oldest first. The deadline is computed
        # once so that `take(next_deadline())` compares the very same float
        # and always flushes: recomputing `now - arrival >= interval` can
        # round the other way and leave the actor waking in a loop.
        self._pending: deque[tuple[Record, float]] = deque()

    def offer(self, records: Iterable[Record], now: float) -> None:
        """Hold `records`, which arrived at `now`, in order."""
        deadline = now + self.flush_interval
        self._pending.extend((record, deadline) for record in records)

    def pending(self) -> int:
        return len(self._pending)

    def next_deadline(self) -> float | None:
        """When the oldest held record must go out, or None if none is held."""
        return self._pending[0][1] if self._pending else None

    def take(self, now: float, link_idle: bool, draining: bool = False) -> list[tuple[Record, ...]]:
        """The batches to send now, oldest first; never an empty one."""
        batches: list[tuple[Record, ...]] = []
        while self._pending:
            count, full = self._next_batch()
            if not full and not (link_idle or draining or now >= self._pending[0][1]):
                break
            batches.append(tuple(self._pending.popleft()[0] for _ in range(count)))
        return batches

    def _next_batch(self) -> tuple[int, bool]:
        """How many of the oldest held records form the next batch, and
        whether it is full (no further record could join it).

        Up to `batch_size` records and no more than fit in `max_batch_bytes`,
        except that a record too big for any batch still goes, alone.
        """
        count = 0
        size = 0
        for record, _ in self._pending:
            if count == self.batch_size:
                return count, True
            size += estimated_size(record)
            if count and size > self.max_batch_bytes:
                return count, True
            count += 1
        # Out of records: full anyway if even an empty message would not fit.
        full = count == self.batch_size or size + RECORD_OVERHEAD_BYTES > self.max_batch_bytes
        return count, full
