"""Credit-based flow control, with coalescing, between two pipeline stages.

Two facts shape this:
- every chunk costs each stage it passes a fixed overhead (the message, the
  stage's bookkeeping: ~100 µs through the whole pipeline, against ~10 µs
  a line), so a stream of small chunks (a child printing a line at a time)
  would spend the agent's CPU on overhead;
- no stage may fire an unbounded stream at the next: every pending send
  of Thespian's in-process base is held in memory until it is delivered.

So records are coalesced into chunks, Nagle-style: when nothing is in flight
to the next stage the records go at once (one hop of latency); otherwise they
gather in the open chunk until the next stage accepts one (a credit comes
back) or the chunk is full. Chunk size follows the load by itself, and at most
`window` chunks are ever in flight. With a `linger`, records that follow the
last chunk within that time wait out the rest of it, so that a child printing
a steady trickle of lines sends one chunk per linger instead of one per line;
a line after a quiet spell still goes at once. When more than a window's worth of records
waits here, `congested` tells the stage to hold its own upstream back, and the
pressure travels to the source reader, which stops reading the child's pipes:
the child then blocks on write instead of the agent growing without bound.

Chunks keep to one stream (`RecordBlock.same_stream`), and carry stream
marks ("every line of this stream up to N is handled upstream"), so that a
stage downstream of one that drops records still learns how far each stream
has got: a mark leaves with the first chunk cut after every record added
before it (`Marks`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

from keruta_actors.records import RecordBlock

StreamMarks = tuple  # (((namespace, source), line number), ...)


def merge_marks(*marks: Iterable) -> StreamMarks:
    """Marks joined, the highest line kept for each stream."""
    merged: dict = {}
    for pairs in marks:
        for stream, line in pairs:
            if line > merged.get(stream, 0):
                merged[stream] = line
    return tuple(sorted(merged.items()))


def marks_of(block: RecordBlock | None, through: StreamMarks = ()) -> StreamMarks:
    """What a chunk tells downstream: its marks, and its block's own last line."""
    if block is None or not len(block):
        return through
    return merge_marks(through, ((block.stream, block.line_numbers[-1]),))


class Marks:
    """Stream marks waiting behind records: a mark is due once every record
    added before it has passed. Counts records, never looks at them."""

    def __init__(self) -> None:
        self._queue: deque[tuple[int, StreamMarks]] = deque()
        self._added = 0
        self._passed = 0

    def add(self, records: int, through: StreamMarks = ()) -> None:
        """`records` more were queued, and `through` holds after them."""
        self._added += records
        if through:
            self._queue.append((self._added, through))

    def passed(self, records: int) -> StreamMarks:
        """`records` more have passed; returns the marks now due."""
        self._passed += records
        due = []
        while self._queue and self._queue[0][0] <= self._passed:
            due.append(self._queue.popleft()[1])
        return merge_marks(*due) if due else ()

    def __bool__(self) -> bool:
        return bool(self._queue)


@dataclass(frozen=True, slots=True)
class Cut:
    """A chunk to send: its records (None if it has none) and whether it is
    the stream's last."""

    block: RecordBlock | None
    final: bool
    through: StreamMarks = ()


class Outbox:
    def __init__(self, window: int, max_records: int, linger: float = 0.0) -> None:
        if window < 1 or max_records < 1:
            raise ValueError("window and max_records must be at least 1")
        self.window = window
        self.max_records = max_records
        self.linger = linger
        self.in_flight = 0
        self._last_cut = float("-inf")
        self._open: list[RecordBlock] = []
        self._held = 0
        self._final_requested = False
        self._final_cut = False
        self._marks = Marks()

    def add(self, block: RecordBlock | None, now: float, final: bool = False, cut: bool = True,
            through: StreamMarks = ()) -> list[Cut]:
        """Queue `block` (and, with `final`, the end of the stream) and the
        stream marks that hold after it; return the chunks to send now, in
        order. With `cut=False` nothing is cut yet: the caller adds more and
        then calls `flush`, so that what it gathered at one moment travels in
        one chunk."""
        if self._final_requested:
            raise ValueError("records added after the final chunk")
        added = 0
        if block is not None and len(block):
            self._open.append(block)
            self._held += len(block)
            added = len(block)
        self._marks.add(added, through)
        self._final_requested = final
        return self._cut(now) if cut else []

    def accepted(self, now: float) -> list[Cut]:
        """The next stage accepted a chunk; return the chunks to send now."""
        self.in_flight = max(0, self.in_flight - 1)
        return self._cut(now)

    @property
    def resting_until(self) -> float:
        """No chunk is cut before this, unless one fills: the linger after the last cut."""
        return self._last_cut + self.linger

    def lingering_until(self) -> float | None:
        """When records held back by the linger must go (call `flush` then)."""
        if self._held and self.in_flight == 0 and not self._final_requested:
            return self._last_cut + self.linger
        return None

    def flush(self, now: float) -> list[Cut]:
        """The linger may be over: return the chunks to send now."""
        return self._cut(now)

    @property
    def closed(self) -> bool:
        """True once the final chunk was asked for: nothing more may follow."""
        return self._final_requested

    @property
    def held(self) -> int:
        """Records waiting here for a chunk to carry them."""
        return self._held

    @property
    def congested(self) -> bool:
        """True when upstream should be held back."""
        return self._held >= self.window * self.max_records

    def _cut(self, now: float) -> list[Cut]:
        cuts = []
        next_stream = False  # the last cut ended where another stream's records begin
        while self.in_flight < self.window and not self._final_cut:
            full = self._held >= self.max_records
            idle = self.in_flight == 0 and self._held and now >= self._last_cut + self.linger
            # Marks with no records to ride on (all dropped upstream) go alone.
            marks_only = self.in_flight == 0 and not self._held and bool(self._marks)
            # Draining: no reason left to wait for more records. A chunk holds
            # one stream, so records of several gathered at once go in one
            # chunk each, together: the second must not wait out a linger.
            go_now = idle or marks_only or next_stream or self._final_requested
            if not (full or go_now):
                break
            block = self._take(self.max_records)
            taken = len(block) if block is not None else 0
            next_stream = 0 < taken < self.max_records and self._held > 0
            final = self._final_requested and not self._held
            self._final_cut = final
            cuts.append(Cut(block, final, self._marks.passed(taken)))
            self.in_flight += 1
            self._last_cut = now
        return cuts

    def _take(self, limit: int) -> RecordBlock | None:
        """Up to `limit` of the oldest records, as one block."""
        taken: list[RecordBlock] = []
        count = 0
        while self._open and count < limit:
            head = self._open[0]
            if taken and not taken[0].same_stream(head):
                break
            room = limit - count
            if len(head) > room:
                # One split of the text for all the chunks this block will fill.
                rest = len(head) - room
                sizes = [room] + [self.max_records] * (rest // self.max_records)
                if rest % self.max_records:
                    sizes.append(rest % self.max_records)
                head, *self._open[0:1] = head.cut(sizes)
            else:
                self._open.pop(0)
            taken.append(head)
            count += len(head)
        self._held -= count
        return RecordBlock.concat(taken) if taken else None
