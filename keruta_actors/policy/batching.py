"""When the batcher cuts a batch and sends it (SPEC §7).

A batch goes out when it is full (`batch_size` records, or as many as fit in
`max_batch_bytes`), when its oldest record has waited `flush_interval`, when
the link is free (the batcher decides: few batches in flight, so a lone
record goes at once, low latency) or when the agent drains. Under load the
link is busy, so records accumulate into full batches (high throughput).

The actor feeds records in with `offer`, calls `take` after every offer, ack
and wakeup, and sets its next wakeup at `next_deadline()`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from keruta_actors.records import RecordBlock

# A LogMessage's bytes besides its text: the JSON keys, id, taskId,
# timestamp, source, level, lineNumber and a small metadata object
# (LogMessageEncoder writes ~290 characters for an empty line).
RECORD_OVERHEAD_BYTES = 300


@dataclass(slots=True)
class _Held:
    """One offered block, partly taken: records before `start` are gone."""

    block: RecordBlock
    messages: list[str]
    sizes: list[int]  # estimated encoded bytes of each record
    deadline: float  # when its records must go out
    start: int = 0


def estimated_sizes(messages: list[str]) -> list[int]:
    """Roughly how many bytes each record adds to an encoded batch.

    Counts the message in characters, not encoded bytes: exact for ASCII,
    low for other text and JSON escapes, so `max_batch_bytes` should sit
    below the server's frame limit with room to spare. Encoding every line
    just to measure it would cost more than the estimate is worth.
    """
    return [len(message) + RECORD_OVERHEAD_BYTES for message in messages]


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
        # Oldest first. A block's deadline is computed once, so that
        # `take(next_deadline())` compares the very same float and always
        # flushes: recomputing `now - arrival >= interval` can round the
        # other way and leave the actor waking in a loop.
        self._held: deque[_Held] = deque()
        self._pending = 0

    def offer(self, block: RecordBlock, now: float) -> None:
        """Hold `block`'s records, which arrived at `now`, in order."""
        if len(block):
            messages = block.messages()
            self._held.append(_Held(block, messages, estimated_sizes(messages), now + self.flush_interval))
            self._pending += len(block)

    def pending(self) -> int:
        return self._pending

    def next_deadline(self) -> float | None:
        """When the oldest held record must go out, or None if none is held."""
        return self._held[0].deadline if self._held else None

    def take(self, now: float, link_free: bool, draining: bool = False) -> list[RecordBlock]:
        """The batches to send now, oldest first; never an empty one."""
        batches: list[RecordBlock] = []
        while self._held:
            counts, full = self._next_batch()
            if not full and not (link_free or draining or now >= self._held[0].deadline):
                break
            batches.append(self._take(counts))
        return batches

    def _next_batch(self) -> tuple[list[int], bool]:
        """How many records of each held block form the next batch, and
        whether it is full (no further record could join it).

        Up to `batch_size` records and no more than fit in `max_batch_bytes`,
        except that a record too big for any batch still goes, alone. Blocks
        that cannot be joined (records of another run) end a batch.
        """
        counts: list[int] = []
        count = 0
        size = 0
        first = self._held[0].block
        for held in self._held:
            if counts and not first.joins(held.block):
                return counts, True
            taken = 0
            for index in range(held.start, len(held.sizes)):
                if count == self.batch_size:
                    return counts + [taken], True
                size += held.sizes[index]
                if count and size > self.max_batch_bytes:
                    return counts + [taken], True
                count += 1
                taken += 1
            counts.append(taken)
        # Out of records: full anyway if even an empty message would not fit.
        full = count == self.batch_size or size + RECORD_OVERHEAD_BYTES > self.max_batch_bytes
        return counts, full

    def _take(self, counts: list[int]) -> RecordBlock:
        pieces = []
        for count in counts:
            if not count:
                break
            held = self._held[0]
            stop = held.start + count
            pieces.append(held.block.span(held.start, stop, held.messages))
            held.start = stop
            if stop == len(held.sizes):
                self._held.popleft()
        self._pending -= sum(counts)
        return RecordBlock.concat(pieces)
