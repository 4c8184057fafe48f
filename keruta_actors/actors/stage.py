"""What every pipeline stage shares: configuration by message, chunk intake
with credit back to upstream, and a bounded outbox to the next stage.

A subclass implements `on_configure` and `on_chunk`, and calls `emit` with
what it passes on. It may override `holding_back` to keep upstream waiting
while it holds records of its own (the rate limiter and the batcher do).

Chunks are handled strictly in the order they were sent (their sequence
numbers), whatever order Thespian delivers them in, and each exactly once: a
chunk whose sequence number was already handled is only acknowledged again.
A chunk the stage fails on is counted as `stage_failure` and the stream goes
on, rather than stalling behind it.

Records not shipped are counted per stream and reason, keyed
(namespace, source, reason), and travel down with the chunks; stream marks
(`Chunk.through`) follow the records they come after, so the batcher knows
how far each stream has got even where records were dropped.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter, deque

from thespian.actors import PoisonMessage

from keruta_actors.actors.base import KerutaActor
from keruta_actors.adapters.process_memory import release_memory
from keruta_actors.messages import Chunk, ChunkAccepted, Configure, RelieveMemory
from keruta_actors.policy.flow import Cut, Outbox, StreamMarks, marks_of
from keruta_actors.policy.ordering import InOrder
from keruta_actors.records import RecordBlock

# Chunks a stage may have in flight to the next: below Thespian's 20 pending
# transmits, with room for control messages.
CREDIT_WINDOW = 8
# Records per chunk at most: a hop's ~1 ms is shared by many lines, and one
# chunk still pickles in a few milliseconds.
MAX_CHUNK_RECORDS = 4096


class Stage(KerutaActor):
    # How long records may wait to join the previous chunk (see policy/flow.py).
    LINGER = 0.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.configured: Configure | None = None
        self.outbox = Outbox(CREDIT_WINDOW, MAX_CHUNK_RECORDS, self.LINGER)
        self._next_seq = 1
        self._in_order: InOrder[Chunk] = InOrder()
        self._upstream = None
        self._owed: deque[int] = deque()  # upstream chunks accepted but not yet acknowledged
        self.not_shipped: Counter[tuple[str, str, str]] = Counter()  # (namespace, source, reason) -> records
        self.dropped: list[tuple[tuple[str, str], array]] = []  # the lines not_shipped counts, per stream

    # -- for subclasses -----------------------------------------------------------

    def on_configure(self, message: Configure) -> None:
        """Build the stage's policy from the settings."""

    def on_chunk(self, chunk: Chunk) -> None:
        """Handle one chunk from upstream; call `emit` for what goes on."""
        raise NotImplementedError

    def holding_back(self) -> bool:
        """True while upstream must wait before sending more."""
        return self.outbox.congested

    def on_relieve_memory(self) -> None:
        """Shrink what this stage holds in memory, where it can."""

    def emit(self, block: RecordBlock | None, final: bool = False, not_shipped: Counter | None = None,
             through: StreamMarks = (), dropped: tuple = (), cut: bool = True) -> None:
        """Pass records on to the next stage (coalesced into chunks by the
        outbox), with counts of records not shipped since the last chunk
        (keyed (namespace, source, reason)) and their line numbers
        (((namespace, source), array), ...), and the stream marks that hold
        after these records; with `cut=False` they wait for the next
        `flush_lingering`."""
        if not_shipped:
            self.not_shipped.update(not_shipped)
        self.dropped.extend(dropped)
        if self.outbox.closed and not block:
            return  # the end of the stream was already passed on
        cuts = self.outbox.add(block, time.monotonic(), final, cut, through)
        if cut:  # otherwise the caller's flush_lingering cuts, and arms the linger's wakeup
            self._send_cuts(cuts)

    def settle_upstream(self) -> None:
        """Acknowledge upstream chunks that were held back, once there is room."""
        while self._owed and not self.holding_back():
            self.send(self._upstream, ChunkAccepted(self._owed.popleft()))

    # -- message handlers ---------------------------------------------------------------

    def receiveMsg_Configure(self, message: Configure, sender) -> None:
        self.configured = message
        self.on_configure(message)

    def receiveMsg_Chunk(self, chunk: Chunk, sender) -> None:
        self._upstream = sender
        if chunk.seq > self._in_order.last + 1:
            self.log.debug("chunk %d arrived before chunk %d", chunk.seq, self._in_order.last + 1)
        for ready in self._in_order.arrived(chunk.seq, chunk):
            self._handle(ready)
        self._owed.append(chunk.seq)
        self.settle_upstream()

    def _handle(self, chunk: Chunk) -> None:
        # Consumed (by InOrder) before it is handled: a chunk this stage fails
        # on must not hold back every chunk behind it. Its records are
        # counted, not silently dropped, and the failure is logged with its
        # traceback.
        self.not_shipped.update(dict(chunk.not_shipped))
        self.dropped.extend(chunk.dropped)
        try:
            self.on_chunk(chunk)
        except Exception:
            self.log.exception("failed on chunk %d; its %d records are not shipped", chunk.seq, chunk.size)
            if chunk.size:
                self.not_shipped[(*chunk.block.stream, "stage_failure")] += chunk.size
                self.dropped.append((chunk.block.stream, chunk.block.line_numbers))
            self.emit(None, final=chunk.final, through=marks_of(chunk.block, chunk.through))

    def receiveMsg_ChunkAccepted(self, message: ChunkAccepted, sender) -> None:
        self._send_cuts(self.outbox.accepted(time.monotonic()))
        self.settle_upstream()

    def receiveMsg_RelieveMemory(self, message: RelieveMemory, sender) -> None:
        self.on_relieve_memory()
        release_memory()

    def receiveMsg_PoisonMessage(self, message: PoisonMessage, sender) -> None:
        # The next stage failed twice on a chunk. Free its credit so the rest
        # of the stream still flows, and let the supervisor count the loss.
        if isinstance(message.poisonMessage, Chunk):
            self._send_cuts(self.outbox.accepted(time.monotonic()))
        self.send(self.configured.supervisor, message)

    def flush_lingering(self, now: float) -> None:
        """Send what the linger held back, if its time has come; call from on_tick."""
        self._send_cuts(self.outbox.flush(now))

    def _send_cuts(self, cuts: list[Cut]) -> None:
        lingering_until = self.outbox.lingering_until()
        if lingering_until is not None:
            self.wake_at(lingering_until)
        for cut in cuts:
            counts = tuple(sorted(self.not_shipped.items()))
            self.not_shipped.clear()
            dropped, self.dropped = tuple(self.dropped), []
            self.send(self.configured.downstream,
                      Chunk(self._next_seq, cut.block, cut.final, counts, cut.through, dropped))
            self._next_seq += 1
