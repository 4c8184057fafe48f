"""Which batches one connection can count as stored by the server (SPEC §5).

Two ways to know:
- the server announced `ack` in its hello: it answers each batch with
  {"type":"ack","batchId":B} once stored;
- otherwise a frame counts as received only when the pong to a ping sent
  after it has come back. Each send is followed by a ping whose payload is a
  marker; a pong for marker M confirms every batch sent before ping M (a
  server answers pings in order, after the frames ahead of them).

Heartbeats reuse the same markers: a ping that stays unanswered past the
heartbeat interval means the link is dead.
"""

from __future__ import annotations

from dataclasses import dataclass

from keruta_actors.records import LogMessageEncoder, RecordBlock


@dataclass(frozen=True, slots=True)
class Ping:
    marker: str


class Receipts:
    def __init__(self) -> None:
        self.capabilities: frozenset[str] = frozenset()
        self._next_marker = 1
        self._by_marker: dict[int, tuple[int, ...]] = {}  # marker -> batches it confirms
        self._sent_at: dict[int, float] = {}  # marker -> when its ping went out
        self._awaiting_ack: set[int] = set()

    def announced(self, capabilities: list[str]) -> None:
        self.capabilities = frozenset(str(item) for item in capabilities)

    @property
    def batch_frames(self) -> bool:
        return "batch" in self.capabilities

    @property
    def server_acks(self) -> bool:
        return "batch" in self.capabilities and "ack" in self.capabilities

    def sent(self, batch_ids: tuple[int, ...], now: float) -> Ping | None:
        """Batches went out; returns the ping to follow them, if one is needed."""
        if self.server_acks:
            self._awaiting_ack.update(batch_ids)
            return None
        return self.ping(now, batch_ids)

    def ping(self, now: float, batch_ids: tuple[int, ...] = ()) -> Ping:
        marker = self._next_marker
        self._next_marker += 1
        self._by_marker[marker] = batch_ids
        self._sent_at[marker] = now
        return Ping(str(marker))

    def acked(self, batch_id: object) -> tuple[int, ...]:
        if batch_id in self._awaiting_ack:
            self._awaiting_ack.discard(batch_id)
            return (batch_id,)
        return ()

    def ponged(self, payload: str) -> tuple[int, ...]:
        """Batches confirmed by the pong carrying `payload`, and by every
        earlier ping (a pong may be lost, the order of frames may not)."""
        try:
            marker = int(payload)
        except ValueError:
            return ()
        confirmed: list[int] = []
        for earlier in [m for m in self._by_marker if m <= marker]:
            confirmed.extend(self._by_marker.pop(earlier))
            self._sent_at.pop(earlier, None)
        return tuple(confirmed)

    def oldest_unanswered(self) -> float | None:
        """When the oldest ping still waiting for its pong was sent."""
        return min(self._sent_at.values(), default=None)


def encode_batch(batch_id: int, batch: RecordBlock, encoder: LogMessageEncoder, batch_frames: bool) -> list[str]:
    """The text frames that carry one batch."""
    messages = encoder.encode_block(batch)
    if batch_frames:
        return [f'{{"type":"logs","batchId":{batch_id},"taskId":{encoder.task_json},"logs":[{",".join(messages)}]}}']
    return messages
