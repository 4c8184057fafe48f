"""What has been handed to a connection and what the server has confirmed.

The batcher keeps this ledger; connections come and go. A batch stays here
until the server acknowledges it, so a reconnect, or a connection actor that
dies, loses nothing: the new connection is handed every unacknowledged batch
again, under the same batch id and with the same record ids, and the receiver
drops the duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass

from keruta_actors.records import RecordBlock


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The outcome of an acknowledgement: how many records it confirmed, the
    batches it confirmed (at `confirmed_at`, the epoch seconds it was given),
    and how many records the server refused."""

    records: int
    batches: tuple[RecordBlock, ...]
    confirmed_at: float
    rejected: int = 0

    @property
    def latencies(self) -> tuple[float, ...]:
        """How long each record took from being read to being confirmed
        (never negative: clocks may differ). Computed on demand: the metrics
        bucket the batches' timestamps without it (telemetry.py)."""
        return tuple(max(0.0, self.confirmed_at - stamp) for batch in self.batches for stamp in batch.timestamps)


class DeliveryLedger:
    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self._unacked: dict[int, RecordBlock] = {}  # insertion = send order
        self._next_id = 1
        self.delivered = 0
        # Per id namespace (one per stream), the highest line confirmed. The
        # pipeline keeps each stream in order and resends in order, so every
        # line of the stream up to it has been confirmed or filtered out.
        self.progress: dict[str, int] = {}

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
        for batch_id in batch_ids:
            batch = self._unacked.pop(batch_id, None)
            if batch is None:
                continue
            count += len(batch)
            refused += min(len(batch), (rejected or {}).get(batch_id, 0))
            batches.append(batch)
            if len(batch):
                last = max(batch.line_numbers)
                self.progress[batch.run_id] = max(last, self.progress.get(batch.run_id, 0))
        self.delivered += count - refused
        return Confirmed(count - refused, tuple(batches), now, refused)

    def unacked(self) -> list[tuple[int, RecordBlock]]:
        """Every batch still waiting for confirmation, oldest first."""
        return list(self._unacked.items())

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
