"""What has been handed to a connection and what the server has confirmed.

The batcher keeps this ledger; connections come and go. A batch stays here
until the server acknowledges it, so a reconnect, or a connection actor that
dies, loses nothing: the new connection is handed every unacknowledged batch
again, under the same batch id and with the same record ids, and the receiver
drops the duplicates.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from keruta_actors.records import RecordBlock


StreamKey = tuple  # (namespace, source)


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The outcome of an acknowledgement: how many records it confirmed, the
    batches it confirmed (at `confirmed_at`, the epoch seconds it was given),
    and how many records the server refused (in all, and per stream)."""

    records: int
    batches: tuple[RecordBlock, ...]
    confirmed_at: float
    rejected: int = 0
    rejected_by_stream: tuple[tuple[StreamKey, int], ...] = ()

    @property
    def latencies(self) -> tuple[float, ...]:
        """How long each record took from being read to being confirmed
        (never negative: clocks may differ). Computed on demand: the metrics
        bucket the batches' timestamps without it (telemetry.py)."""
        return tuple(max(0.0, self.confirmed_at - stamp) for batch in self.batches for stamp in batch.timestamps)


class DeliveryLedger:
    """Batches keep to one stream (`RecordBlock.same_stream`), so what is
    delivered and refused is counted per stream from batch lengths."""

    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self._unacked: dict[int, RecordBlock] = {}  # insertion = send order
        self._next_id = 1
        self.delivered = 0
        self.delivered_by_stream: Counter[StreamKey] = Counter()
        # Acknowledged batches (stream, first line, records) not yet known to
        # be below their stream's watermark: acks that came out of order
        # leave done records above it, still in the spool (see done_above).
        self._recently_done: list[tuple[StreamKey, int, int]] = []

    def open(self, batches: list[RecordBlock]) -> list[tuple[int, RecordBlock]]:
        """Give each batch an id and remember it until acknowledged."""
        numbered = []
        for batch in batches:
            batch_id = self._next_id
            self._next_id += 1
            self._unacked[batch_id] = batch
            numbered.append((batch_id, batch))
        return numbered

    def acked(self, batch_ids: tuple[int, ...], now: float, rejected: dict[int, int] | None = None) -> Confirmed:
        """Forget confirmed batches. Unknown or repeated ids are ignored:
        a server may acknowledge twice after a resend. `rejected` says, by
        batch id, how many records the server refused: done with, but not
        delivered."""
        count = refused = 0
        batches: list[RecordBlock] = []
        refused_by: Counter[StreamKey] = Counter()
        for batch_id in batch_ids:
            batch = self._unacked.pop(batch_id, None)
            if batch is None or not len(batch):
                continue
            count += len(batch)
            no = min(len(batch), (rejected or {}).get(batch_id, 0))
            refused += no
            if no:
                refused_by[batch.stream] += no
            self.delivered_by_stream[batch.stream] += len(batch) - no
            self._recently_done.append((batch.stream, batch.line_numbers[0], len(batch)))
            batches.append(batch)
        self.delivered += count - refused
        return Confirmed(count - refused, tuple(batches), now, refused, tuple(refused_by.items()))

    def done_above(self, watermarks: dict[StreamKey, int]) -> dict[StreamKey, int]:
        """Per stream, records acknowledged (delivered or refused) above its
        watermark: done with, though the spool still holds them. Forgets
        those below it, so call it now and then (with each watermark)."""
        kept = [(stream, first, count) for stream, first, count in self._recently_done
                if first > watermarks.get(stream, 0)]
        self._recently_done = kept
        above: Counter[StreamKey] = Counter()
        for stream, _, count in kept:
            above[stream] += count
        return dict(above)

    def unacked(self) -> list[tuple[int, RecordBlock]]:
        """Every batch still waiting for confirmation, oldest first."""
        return list(self._unacked.items())

    def firsts(self) -> Iterable[tuple[StreamKey, int]]:
        """(stream, first line) of every batch not yet acknowledged."""
        return ((batch.stream, batch.line_numbers[0]) for batch in self._unacked.values() if len(batch))

    @property
    def in_flight(self) -> int:
        return len(self._unacked)

    @property
    def room(self) -> int:
        """How many more batches may be handed out now."""
        return max(0, self.max_in_flight - len(self._unacked))

    @property
    def undelivered(self) -> int:
        return sum(len(batch) for batch in self._unacked.values())


class StreamProgress:
    """How far each stream is done with: its watermark is the line up to
    which every record is confirmed by the server or was not shipped on
    purpose, which is what the spool may forget and a tailed file commit.

    Stream marks (policy/flow.py) say how far the stages upstream have got;
    the records still outstanding here (held, or sent and not acknowledged)
    hold the watermark below their lowest line, whatever order acks come in."""

    def __init__(self) -> None:
        self._through: dict[StreamKey, int] = {}
        self._dropped: dict[StreamKey, list] = {}  # stream -> ascending arrays of lines not shipped

    def dropped(self, stream: StreamKey, lines) -> None:
        """Lines of the stream not shipped on purpose upstream (ascending)."""
        if len(lines):
            self._dropped.setdefault(stream, []).append(lines)

    def dropped_above(self, watermarks: dict[StreamKey, int]) -> dict[StreamKey, int]:
        """Per stream, lines not shipped above its watermark: done with,
        though the spool still holds them. Forgets those below it."""
        above: dict[StreamKey, int] = {}
        for stream, arrays in self._dropped.items():
            watermark = watermarks.get(stream, 0)
            kept = [lines for lines in arrays if lines[-1] > watermark]
            self._dropped[stream] = kept
            count = sum(len(lines) - bisect_right(lines, watermark) for lines in kept)
            if count:
                above[stream] = count
        return above

    def passed(self, marks) -> None:
        """Stream marks from a chunk that has arrived."""
        for stream, line in marks:
            if line > self._through.get(stream, 0):
                self._through[stream] = line

    def watermarks(self, outstanding: Iterable[tuple[StreamKey, int]]) -> dict[StreamKey, int]:
        """Each stream's watermark, given the first line of every block not
        yet done with, as (stream, line)."""
        lowest: dict[StreamKey, int] = {}
        for stream, first in outstanding:
            if first < lowest.get(stream, first + 1):
                lowest[stream] = first
        return {stream: min(line, lowest[stream] - 1) if stream in lowest else line
                for stream, line in self._through.items()}
