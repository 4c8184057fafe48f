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
"""

from __future__ import annotations

from dataclasses import dataclass

from keruta_actors.records import RecordBlock


@dataclass(frozen=True, slots=True)
class Cut:
    """A chunk to send: its records (None if it has none) and whether it is
    the stream's last."""

    block: RecordBlock | None
    final: bool


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

    def add(self, block: RecordBlock | None, now: float, final: bool = False, cut: bool = True) -> list[Cut]:
        """Queue `block` (and, with `final`, the end of the stream); return
        the chunks to send now, in order. With `cut=False` nothing is cut
        yet: the caller adds more and then calls `flush`, so that what it
        gathered at one moment travels in one chunk."""
        if self._final_requested:
            raise ValueError("records added after the final chunk")
        if block is not None and len(block):
            self._open.append(block)
            self._held += len(block)
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
        while self.in_flight < self.window and not self._final_cut:
            full = self._held >= self.max_records
            idle = self.in_flight == 0 and self._held and now >= self._last_cut + self.linger
            # Draining: no reason left to wait for more records.
            go_now = idle or self._final_requested
            if not (full or go_now):
                break
            block = self._take(self.max_records)
            final = self._final_requested and not self._held
            self._final_cut = final
            cuts.append(Cut(block, final))
            self.in_flight += 1
            self._last_cut = now
        return cuts

    def _take(self, limit: int) -> RecordBlock | None:
        """Up to `limit` of the oldest records, as one block."""
        taken: list[RecordBlock] = []
        count = 0
        while self._open and count < limit:
            head = self._open[0]
            if taken and not taken[0].joins(head):
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
