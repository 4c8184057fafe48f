"""Credit-based flow control, with coalescing, between two pipeline stages.

Two measured facts of Thespian shape this (THESPIAN.md):
- a hop costs ~1 ms of CPU per message whatever its size, so a stream of
  small chunks (a child printing a line at a time) would spend the agent's
  CPU on message overhead;
- an actor stalls once 20 of its sends are in flight, and past ~950 queued
  sends stops handling messages, so no stage may fire an unbounded stream.

So records are coalesced into chunks, Nagle-style: when nothing is in flight
to the next stage the records go at once (one hop of latency); otherwise they
gather in the open chunk until the next stage accepts one (a credit comes
back) or the chunk is full. Chunk size follows the load by itself, and at most
`window` chunks are ever in flight. When more than a window's worth of records
waits here, `congested` tells the stage to hold its own upstream back, and the
pressure travels to the source reader, which stops reading the child's pipes:
the child then blocks on write instead of the agent growing without bound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Cut:
    """A chunk to send: its records and whether it is the stream's last."""

    records: tuple
    final: bool


class Outbox:
    def __init__(self, window: int, max_records: int) -> None:
        if window < 1 or max_records < 1:
            raise ValueError("window and max_records must be at least 1")
        self.window = window
        self.max_records = max_records
        self.in_flight = 0
        self._open: list = []
        self._final_requested = False
        self._final_cut = False

    def add(self, records, final: bool = False) -> list[Cut]:
        """Queue `records` (and, with `final`, the end of the stream);
        return the chunks to send now, in order."""
        if self._final_requested:
            raise ValueError("records added after the final chunk")
        self._open.extend(records)
        self._final_requested = final
        return self._cut()

    def accepted(self) -> list[Cut]:
        """The next stage accepted a chunk; return the chunks to send now."""
        self.in_flight = max(0, self.in_flight - 1)
        return self._cut()

    @property
    def closed(self) -> bool:
        """True once the final chunk was asked for: nothing more may follow."""
        return self._final_requested

    @property
    def held(self) -> int:
        """Records waiting here for a chunk to carry them."""
        return len(self._open)

    @property
    def congested(self) -> bool:
        """True when upstream should be held back."""
        return len(self._open) >= self.window * self.max_records

    def _cut(self) -> list[Cut]:
        cuts = []
        while self.in_flight < self.window and not self._final_cut:
            full = len(self._open) >= self.max_records
            # Draining: no reason left to wait for more records.
            go_now = (self.in_flight == 0 and self._open) or self._final_requested
            if not (full or go_now):
                break
            records = tuple(self._open[: self.max_records])
            del self._open[: self.max_records]
            final = self._final_requested and not self._open
            self._final_cut = final
            cuts.append(Cut(records, final))
            self.in_flight += 1
        return cuts
