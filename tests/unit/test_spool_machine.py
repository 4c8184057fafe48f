"""The spool against a plain model, under crashes, torn writes and damage.

Rules: append, confirm, crash (optionally mid-write of a frame or of a mark,
leaving a torn one), damage bytes near the tail of the last segment, restart.
Invariants, whenever the spool is open: every record appended and not
confirmed is replayed exactly once, in append order, under its id, and
nothing confirmed comes back; each stream's numbering goes on after the
highest lineNumber spooled or confirmed; damage is reported at the first open
after it, and never again.

A crash closes the spool's descriptors: the spool keeps no buffer of its
own, so the files are then as a SIGKILL leaves them (test_spool.py kills a
real writer too).
"""

import os
import shutil
import tempfile

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from keruta_actors.adapters.spool import Spool
from keruta_actors.config import SpoolSettings
from keruta_actors.policy.spool_frames import MetadataCodec, Stream, encode_mark, encode_records, scan_records
from keruta_actors.records import RecordBlock

SETTINGS = SpoolSettings(max_size=1 << 20, segment_size=700, fsync="never", fsync_interval=1.0)
STREAMS = [Stream("run", "stdout"), Stream("run", "stderr"), Stream("run.stdin", "stdout")]


class SpoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state_dir = tempfile.mkdtemp(prefix="spool-machine-")
        self.spool: Spool | None = Spool.open(self.state_dir, "task", SETTINGS)
        self.held: list[tuple[Stream, int, str]] = []  # appended, in order, not known lost
        self.watermarks = {stream: 0 for stream in STREAMS}
        self.writes = 0  # makes every message distinct, even when a lost line's number is reused
        self.damaged = False  # since the last open

    def teardown(self) -> None:
        if self.spool is not None:
            self.spool.close()
        shutil.rmtree(self.state_dir)

    def high(self, stream: Stream) -> int:
        lines = [line for s, line, _ in self.held if s == stream]
        return max([self.watermarks[stream], *lines])

    def block(self, stream: Stream, count: int) -> RecordBlock:
        first = self.high(stream) + 1
        self.writes += 1
        texts = [(f"w{self.writes} {stream.source} #{n} é", None) for n in range(first, first + count)]
        return RecordBlock.of_lines(stream.namespace, stream.source, first, 1.0, ["INFO"] * count, texts, ({},) * 3)

    # --- rules while open --------------------------------------------------------

    @precondition(lambda self: self.spool is not None)
    @rule(stream=st.sampled_from(STREAMS), count=st.integers(1, 12))
    def append(self, stream, count):
        block = self.block(stream, count)
        assert self.spool.append(block) is block
        self.held.extend((stream, line, text) for line, text in zip(block.line_numbers, block.messages()))

    @precondition(lambda self: self.spool is not None)
    @rule(stream=st.sampled_from(STREAMS), back=st.integers(0, 15))
    def confirm(self, stream, back):
        line = max(0, self.high(stream) - back)
        self.spool.confirm(stream.namespace, stream.source, line)
        self.watermarks[stream] = max(line, self.watermarks[stream])
        self.held = [item for item in self.held if item[0] != stream or item[1] > self.watermarks[stream]]

    @precondition(lambda self: self.spool is not None)
    @rule(tear=st.sampled_from([None, "frame", "mark"]), stream=st.sampled_from(STREAMS),
          cut=st.floats(0.01, 0.99))
    def crash(self, tear, stream, cut):
        """The agent dies; perhaps mid-way through writing a frame or a mark."""
        position = self.spool.position
        self.spool.close()
        self.spool = None
        if tear == "frame":
            parts, _ = encode_records(self.block(stream, 5), MetadataCodec())
            self.tear(f"{position.segment:08d}.seg", b"".join(bytes(part) for part in parts), cut)
        elif tear == "mark":
            self.tear("marks.log", encode_mark(stream, self.high(stream) + 1), cut)

    def tear(self, name: str, frame: bytes, cut: float) -> None:
        with open(os.path.join(self.state_dir, "task.spool", name), "ab") as file:
            file.write(frame[: max(1, int(len(frame) * cut))])
        self.damaged = True

    @precondition(lambda self: self.spool is not None)
    @rule(back=st.integers(1, 300), size=st.integers(1, 4))
    def crash_and_damage_the_tail(self, back, size):
        """The agent dies, and bytes near the end of the last segment rot."""
        directory = self.spool.directory
        self.spool.close()
        self.spool = None
        names = sorted(name for name in os.listdir(directory) if name.endswith(".seg"))
        if not names:
            return
        path = os.path.join(directory, names[-1])
        with open(path, "r+b") as file:
            data = file.read()
            at = max(0, len(data) - back)
            frames, _ = scan_records(data)
            file.seek(at)
            file.write(bytes(byte ^ 0xFF for byte in data[at : at + size]))
        for frame in frames:
            if frame.offset < at + size and at < frame.offset + frame.header.frame_size:
                self.lose(frame.stream, frame.header.first, frame.header.last)
        self.damaged = True

    def lose(self, stream: Stream, first: int, last: int) -> None:
        self.held = [item for item in self.held if item[0] != stream or not first <= item[1] <= last]

    # --- restarting ----------------------------------------------------------------

    @precondition(lambda self: self.spool is None)
    @rule()
    def restart(self):
        self.spool = Spool.open(self.state_dir, "task", SETTINGS)
        assert bool(self.spool.damage) == self.damaged, self.spool.damage
        self.damaged = False

    # --- invariants -----------------------------------------------------------------

    @invariant()
    def replays_each_unconfirmed_record_once_in_order_under_its_id(self):
        if self.spool is None:
            return
        replayed = [(record[0], record[5]) for block, _ in self.spool.blocks() for record in block.rows()]
        expected = [(f"{s.namespace}-{s.source}-{line}", text) for s, line, text in self.held]
        assert replayed == expected

    @invariant()
    def numbering_goes_on_after_the_highest_line(self):
        if self.spool is None:
            return
        for stream in STREAMS:
            assert self.spool.last_line_number(stream.namespace, stream.source) == self.high(stream)


TestSpoolMachine = SpoolMachine.TestCase
