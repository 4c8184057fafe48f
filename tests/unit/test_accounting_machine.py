"""The pipeline's account as a state machine (SPEC §6): the reader's write
-ahead (the real spool, in a temporary directory), a filter that drops some
lines, the outbox's stream marks, the batch policy, the delivery ledger and
the watermarks, with acknowledgements in any order, links that lose what is
in flight, crashes and clean ends. After every step no watermark passes a
record that is neither confirmed nor dropped; at every clean end, per stream,
read + from the spool = delivered + not shipped + left in the spool, with
nothing unaccounted for; and across restarts every record is delivered or
dropped or still in the spool, under one id."""

from __future__ import annotations

import logging
from array import array
import shutil
import tempfile
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from keruta_actors.adapters.write_ahead import WriteAhead
from keruta_actors.config import SpoolSettings
from keruta_actors.policy.accounting import account
from keruta_actors.policy.batching import BatchPolicy
from keruta_actors.policy.delivery import DeliveryLedger, StreamProgress
from keruta_actors.policy.flow import Outbox, marks_of
from keruta_actors.records import RecordBlock

SETTINGS = SpoolSettings(max_size=1 << 20, segment_size=600, fsync="never", fsync_interval=1.0)
SHARED = ({"processId": 1},) * 3
LOG = logging.getLogger("test.accounting")
ROOM = 12  # records the "pipeline" takes from the reader before it is full


class Pipeline(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="accounting-")
        self.server: set[str] = set()  # ids stored
        self.dropped_ever: set[str] = set()
        self.read_ever: list[str] = []
        self.now = 0.0
        self._open_run()

    def _open_run(self):
        self.wal = WriteAhead.open(self.directory, "task", SETTINGS, LOG)
        self.namespace = self.wal.run_id
        self.numbers = {source: self.wal.last_line_number(self.namespace, source) for source in ("stdout", "stderr")}
        self.held = []  # blocks the reader sent on, not yet through the filter
        self.outbox = Outbox(window=2, max_records=5)
        self.policy = BatchPolicy(batch_size=3, flush_interval=0.0, max_batch_bytes=1 << 20)
        self.ledger = DeliveryLedger(max_in_flight=6)
        self.progress = StreamProgress()
        self.not_shipped: Counter = Counter()

    def teardown(self):
        self.wal.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- the reader -------------------------------------------------------------------

    def _room(self):
        return sum(len(block) for block in self.held) < ROOM

    @rule(source=st.sampled_from(["stdout", "stderr"]), drops=st.lists(st.booleans(), min_size=1, max_size=6))
    def read(self, source, drops):
        first = self.numbers[source] + 1
        self.numbers[source] += len(drops)
        texts = [("drop" if drop else "keep") + f" {source} {first + i}" for i, drop in enumerate(drops)]
        block = RecordBlock.of_lines(self.namespace, source, first, 0.0, ["INFO"] * len(drops),
                                     [(text, None) for text in texts], SHARED)
        self.read_ever.extend(f"{self.namespace}-{source}-{first + i}" for i in range(len(drops)))
        ready = self.wal.take(block, room=self._room())
        if ready is not None:
            self.held.append(ready)

    @rule()
    def backlog(self):
        for block in self.wal.backlog(self._room):
            self.held.append(block)

    # -- the filter and the batcher ---------------------------------------------------

    @rule()
    def filter_one(self):
        if not self.held:
            return
        block = self.held.pop(0)
        messages = block.messages()
        keep = [i for i, text in enumerate(messages) if text.startswith("keep")]
        stream = block.stream
        gone = array("q", (block.line_numbers[i] for i in range(len(block)) if i not in keep))
        self.progress.dropped(stream, gone)
        self.not_shipped[(*stream, "excluded")] += len(gone)
        self.dropped_ever.update(f"{stream[0]}-{stream[1]}-{line}" for line in gone)
        self._to_batcher(self.outbox.add(block.select(keep), self.now, through=marks_of(block)))

    def _to_batcher(self, cuts):
        for cut in cuts:
            if cut.block is not None:
                self.policy.offer(cut.block, self.now)
            self.progress.passed(marks_of(cut.block, cut.through))

    @rule()
    def batcher_accepts(self):
        self._to_batcher(self.outbox.accepted(self.now))

    @rule()
    def send(self):
        batches = self.policy.take(self.now, link_free=True)
        room = self.ledger.room
        self.ready = getattr(self, "ready", [])
        self.ready.extend(batches)
        handed, self.ready = self.ready[:room], self.ready[room:]
        self.ledger.open(handed)

    @rule(data=st.data(), refuse=st.booleans())
    def server_acks_one(self, data, refuse):
        unacked = self.ledger.unacked()
        if not unacked:
            return
        batch_id, batch = data.draw(st.sampled_from(unacked))
        rejected = {batch_id: len(batch)} if refuse else {}
        confirmed = self.ledger.acked((batch_id,), 0.0, rejected)
        for stream, count in confirmed.rejected_by_stream:
            self.not_shipped[(*stream, "rejected_by_server")] += count
        if not refuse:
            self.server.update(row[0] for row in batch.rows())
        else:
            self.dropped_ever.update(row[0] for row in batch.rows())

    @rule()
    def spool_confirms(self):
        self.wal.confirm(tuple(self._watermarks().items()))

    def _outstanding(self):
        return (*self.ledger.firsts(), *((b.stream, b.line_numbers[0]) for b in getattr(self, "ready", []) if len(b)),
                *self.policy.firsts())

    def _watermarks(self):
        return self.progress.watermarks(self._outstanding())

    # -- the end of a run -------------------------------------------------------------

    @rule()
    def agent_killed(self):
        """Everything in memory is gone; the spool stays."""
        self.wal.close()
        self.ready = []
        self._open_run()

    @rule()
    def run_ends(self):
        watermarks = self._watermarks()
        done_above = Counter(self.ledger.done_above(watermarks)) + Counter(self.progress.dropped_above(watermarks))
        self.wal.confirm(tuple(watermarks.items()))
        read, from_spool = dict(self.wal.read), dict(self.wal.held_at_open)
        left = self.wal.close()
        accounts = account(read=read, from_spool=from_spool, delivered=dict(self.ledger.delivered_by_stream),
                           not_shipped=dict(self.not_shipped),
                           left=dict(Counter(left) - Counter(done_above)), labels={}, spool_usable=True)
        for stream_account in accounts:
            assert stream_account.unaccounted == 0 and stream_account.lost == 0, accounts
        self.ready = []
        self._open_run()

    # -- what must always hold ----------------------------------------------------------

    @invariant()
    def no_watermark_passes_a_record_not_done_with(self):
        for (namespace, source), watermark in self._watermarks().items():
            for line in range(1, watermark + 1):
                record_id = f"{namespace}-{source}-{line}"
                assert record_id in self.server or record_id in self.dropped_ever, (record_id, watermark)

    @invariant()
    def every_record_read_is_delivered_dropped_or_in_the_spool(self):
        if self.wal.spool is None:
            return
        status = {(s.stream.namespace, s.stream.source): (s.watermark, s.last) for s in self.wal.spool.status()}
        for record_id in self.read_ever:
            namespace, source, line = record_id.rsplit("-", 2)
            watermark, _ = status.get((namespace, source), (0, 0))
            if int(line) <= watermark:
                assert record_id in self.server or record_id in self.dropped_ever, record_id


Pipeline.TestCase.settings = settings(stateful_step_count=40, max_examples=60, deadline=None)
test_pipeline_accounting = Pipeline.TestCase
