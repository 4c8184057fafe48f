"""`FileTail` on real files: appends, both logrotate schemes, restarts from
the state file. A rotated file is tailed with no line lost or repeated."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from keruta_actors.adapters.file_tail import FileTail
from keruta_actors.policy.rotation import Missing, Reopen, Truncated


class Writer:
    """A program's log file: appends through one descriptor until told to reopen."""

    def __init__(self, path: str, append: bool = True) -> None:
        self.path = path
        self.append = append
        self.fd = self._open()

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if self.append else 0)
        return os.open(self.path, flags, 0o644)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def reopen(self) -> None:
        os.close(self.fd)
        self.fd = self._open()

    def close(self) -> None:
        os.close(self.fd)


def rename_rotate(path: str) -> None:
    """logrotate's create mode: app.log.N -> N+1, app.log -> .1, a new app.log."""
    rotated = sorted(
        (int(name.rsplit(".", 1)[1]) for name in os.listdir(os.path.dirname(path))
         if name.startswith(os.path.basename(path) + ".") and name.rsplit(".", 1)[1].isdigit()),
        reverse=True,
    )
    for n in rotated:
        os.rename(f"{path}.{n}", f"{path}.{n + 1}")
    os.rename(path, f"{path}.1")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


def copytruncate_rotate(path: str) -> None:
    rotated = sorted(
        (int(name.rsplit(".", 1)[1]) for name in os.listdir(os.path.dirname(path))
         if name.startswith(os.path.basename(path) + ".") and name.rsplit(".", 1)[1].isdigit()),
        reverse=True,
    )
    for n in rotated:
        os.rename(f"{path}.{n}", f"{path}.{n + 1}")
    shutil.copyfile(path, f"{path}.1")
    os.truncate(path, 0)


def drain(tail: FileTail) -> bytes:
    out = tail.poll()
    while tail.more:
        out += tail.poll()
    return out


@pytest.fixture
def log(tmp_path):
    return str(tmp_path / "app.log")


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "state" / "tails.json")


# --- plain tailing -------------------------------------------------------------


def test_appended_bytes_are_returned_once(log, state):
    writer = Writer(log)
    with FileTail(log, state) as tail:
        writer.write(b"one\ntw")
        assert tail.poll() == b"one\ntw"
        assert tail.poll() == b""
        writer.write(b"o\nthree\n")
        assert tail.poll() == b"o\nthree\n"
        assert (tail.position, tail.line_end) == (14, 14)
    writer.close()


def test_a_poll_returns_at_most_max_read_bytes(log):
    writer = Writer(log)
    writer.write(b"x" * 250)
    with FileTail(log, max_read=100) as tail:
        sizes = []
        while True:
            sizes.append(len(tail.poll()))
            if not tail.more:
                break
        assert sizes == [100, 100, 50]
    writer.close()


def test_a_file_that_appears_later_is_read_from_its_start(log, state):
    with FileTail(log, state, start_at_end=True) as tail:
        assert tail.poll() == b""
        assert isinstance(tail.last_decision, Missing)
        writer = Writer(log)
        writer.write(b"first\n")
        assert tail.poll() == b"first\n"
        writer.write(b"second\n")
        assert tail.poll() == b"second\n"
    writer.close()


def test_start_at_end_skips_what_is_there_when_nothing_was_saved(log, state):
    writer = Writer(log)
    writer.write(b"old\n")
    with FileTail(log, state, start_at_end=True) as tail:
        assert tail.poll() == b""
        writer.write(b"new\n")
        assert tail.poll() == b"new\n"
    writer.close()


# --- rotation -------------------------------------------------------------------


def test_rename_rotation_keeps_late_writes_to_the_old_file_in_order(log):
    writer = Writer(log)
    with FileTail(log) as tail:
        writer.write(b"1\n2\n")
        assert tail.poll() == b"1\n2\n"
        rename_rotate(log)
        writer.write(b"3\n")  # the writer has not reopened yet
        assert tail.poll() == b"3\n"
        assert isinstance(tail.last_decision, Reopen)
        writer.write(b"4\n")
        assert tail.poll() == b"4\n"
        writer.reopen()
        writer.write(b"5\n")
        writer.write(b"6\n")
        assert tail.poll() == b"5\n6\n"
        assert tail.poll() == b""
    writer.close()


def test_a_rotation_between_polls_returns_the_old_rest_before_the_new(log):
    writer = Writer(log)
    with FileTail(log) as tail:
        writer.write(b"a\n")
        assert tail.poll() == b"a\n"
        writer.write(b"b\n")
        rename_rotate(log)
        writer.write(b"c\n")
        writer.reopen()
        writer.write(b"d\n")
        assert tail.poll() == b"b\nc\nd\n"
    writer.close()


def test_copytruncate_is_followed_from_the_start(log):
    writer = Writer(log)
    with FileTail(log) as tail:
        writer.write(b"before rotation\n")
        assert tail.poll() == b"before rotation\n"
        copytruncate_rotate(log)
        writer.write(b"after\n")
        assert tail.poll() == b"after\n"
        assert isinstance(tail.last_decision, Truncated)
        writer.write(b"a much longer line that goes past the old offset\n")
        assert tail.poll() == b"a much longer line that goes past the old offset\n"
    writer.close()


def test_copytruncate_rewritten_past_our_offset_is_told_by_the_first_bytes(log):
    writer = Writer(log)
    with FileTail(log) as tail:
        writer.write(b"short\n")
        assert tail.poll() == b"short\n"
        copytruncate_rotate(log)
        writer.write(b"longer than before\n")  # past offset 6 before we look
        assert tail.poll() == b"longer than before\n"
    writer.close()


def test_copytruncate_with_a_writer_that_does_not_append_skips_the_hole(log):
    writer = Writer(log, append=False)  # `cmd > app.log`
    with FileTail(log) as tail:
        writer.write(b"x" * 5000 + b"\n")
        assert len(tail.poll()) == 5001
        copytruncate_rotate(log)
        writer.write(b"after the hole\n")  # lands at offset 5001
        assert tail.poll() == b"after the hole\n"
    writer.close()


def test_a_deleted_file_is_read_to_its_end_and_a_new_one_followed(log):
    writer = Writer(log)
    with FileTail(log) as tail:
        writer.write(b"a\n")
        os.unlink(log)
        writer.write(b"b\n")
        assert tail.poll() == b"a\nb\n"
        assert isinstance(tail.last_decision, Missing)
        writer.reopen()
        writer.write(b"c\n")
        assert tail.poll() == b"c\n"
    writer.close()


# --- offsets across restarts --------------------------------------------------------


def test_a_restart_resumes_at_the_committed_byte(log, state):
    writer = Writer(log)
    writer.write(b"one\ntwo\nthree\n")
    with FileTail(log, state) as tail:
        assert tail.poll() == b"one\ntwo\nthree\n"
        tail.commit(8, {"lineNumber": 2})  # "three" was read but not handed on
        tail.commit(4)  # an old commit again: ignored
    with FileTail(log, state) as tail:
        assert tail.poll() == b"three\n"
        assert tail.resumed.exact, tail.resumed.reason
        assert tail.checkpoint == {"lineNumber": 2}
    writer.close()


def test_nothing_is_skipped_without_a_commit(log, state):
    writer = Writer(log)
    writer.write(b"one\n")
    with FileTail(log, state) as tail:
        assert tail.poll() == b"one\n"
    with FileTail(log, state, start_at_end=True) as tail:
        assert tail.poll() == b"one\n"  # the saved offset 0 wins over start_at_end
    writer.close()


def test_a_file_rotated_while_the_agent_was_down_is_finished_first(log, state):
    writer = Writer(log)
    with FileTail(log, state) as tail:
        writer.write(b"a\nb\n")
        assert tail.poll() == b"a\nb\n"
        tail.commit(2)
    writer.write(b"c\n")
    rename_rotate(log)
    rename_rotate(log)  # and once more: the committed file is now app.log.2
    writer.reopen()
    writer.write(b"d\n")
    with FileTail(log, state) as tail:
        assert tail.poll() == b"b\nc\nd\n"
        assert tail.resumed.exact and "rotated away" in tail.resumed.reason
    writer.close()


def test_a_file_opened_after_the_last_commit_is_not_forgotten(log, state):
    writer = Writer(log)
    with FileTail(log, state) as tail:
        writer.write(b"a\n")
        assert tail.poll() == b"a\n"
        tail.commit(2)
        rename_rotate(log)
        assert tail.poll() == b""  # the new file is opened, still empty
        writer.reopen()
        writer.write(b"b\n")
        assert tail.poll() == b"b\n"
        rename_rotate(log)  # rotated away before anything after "a" was committed
        writer.reopen()
        writer.write(b"c\n")
    with FileTail(log, state) as tail:  # as after a crash
        assert tail.poll() == b"b\nc\n"
        assert tail.resumed.exact, tail.resumed.reason
    writer.close()


def test_a_saved_file_that_is_gone_is_reported(log, state):
    writer = Writer(log)
    writer.write(b"a\n")
    with FileTail(log, state) as tail:
        tail.poll()
        tail.commit(1)
    rename_rotate(log)
    os.unlink(log + ".1")
    writer.reopen()
    writer.write(b"new\n")
    with FileTail(log, state) as tail:
        assert tail.poll() == b"new\n"
        assert not tail.resumed.exact and "gone" in tail.resumed.reason
    writer.close()


def test_an_unreadable_state_file_means_from_the_start(log, state):
    writer = Writer(log)
    writer.write(b"a\n")
    os.makedirs(os.path.dirname(state))
    with open(state, "w") as file:
        file.write("{not json")
    with FileTail(log, state, start_at_end=True) as tail:
        assert tail.poll() == b"a\n"
        assert not tail.resumed.exact and "unreadable" in tail.resumed.reason
    writer.close()


def test_the_state_file_is_private_and_replaced_whole(log, state, tmp_path):
    writer = Writer(log)
    writer.write(b"a\n")
    other = str(tmp_path / "other.log")
    second_writer = Writer(other)
    second_writer.write(b"bb\n")
    previous = os.umask(0)
    try:
        with FileTail(log, state) as tail, FileTail(other, state) as second:
            tail.poll(), second.poll()
            tail.commit(2)
            second.commit(3)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    assert os.listdir(os.path.dirname(state)) == ["tails.json"]  # no temp file left
    with open(state) as file:
        sources = json.load(file)["sources"]
    assert {entry["offset"] for entry in sources.values()} == {2, 3}
    writer.close()
    second_writer.close()


def test_commit_cannot_pass_what_was_returned(log, state):
    writer = Writer(log)
    writer.write(b"abc")
    with FileTail(log, state) as tail:
        tail.poll()
        with pytest.raises(ValueError):
            tail.commit(4)
    writer.close()


# --- the model ---------------------------------------------------------------------

MAX_READ = 64


class RotatingLog(RuleBasedStateMachine):
    """A writer, logrotate in both modes, and a tail that crashes and restarts.

    The model: the stream the tail must return is every generation of the
    file (a new one per rename rotation) in order, each as written, except
    that copytruncate loses what the tail had not read when it struck. The
    caller keeps what it polled up to its last commit across a crash.
    """

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="file-tail-")
        self.path = os.path.join(self.dir, "app.log")
        self.state = os.path.join(self.dir, "state", "tails.json")
        self.writer = Writer(self.path)
        self.generations = [bytearray()]
        self.writer_generation = self.path_generation = 0
        self.read_upto = [0]  # per generation: what the tail has read, or will re-read from
        self.polled_since_rotation = True
        self.sequence = 0
        self.tail: FileTail | None = FileTail(self.path, self.state, max_read=MAX_READ)
        self.delivered = bytearray()  # what the caller handed on, across restarts
        self.base = 0  # len(delivered) when this tail started
        self.committed = 0  # the tail's own count
        self.checkpoint = None
        self.hazard: int | None = None  # a crash before this is committed loses bytes by design
        self.copytruncated = False

    def expected(self) -> bytes:
        return b"".join(self.generations)

    @rule(size=st.integers(0, 30) | st.integers(60, 200), newline=st.booleans())
    def write(self, size, newline):
        self.sequence += 1
        data = f"{self.sequence}:".encode() + b"." * size + (b"\n" if newline else b"")
        self.writer.write(data)
        self.generations[self.writer_generation] += data

    @precondition(lambda self: self.polled_since_rotation)
    @rule()
    def rotate_by_rename(self):
        rename_rotate(self.path)
        self.generations.append(bytearray())
        self.read_upto.append(0)
        self.path_generation = len(self.generations) - 1
        self.polled_since_rotation = False

    @rule()
    def writer_reopens(self):
        self.writer.reopen()
        self.writer_generation = self.path_generation

    @precondition(lambda self: self.polled_since_rotation)
    @rule()
    def rotate_by_copytruncate(self):
        copytruncate_rotate(self.path)
        self.copytruncated = True
        generation = self.generations[self.path_generation]
        kept = self.read_upto[self.path_generation]
        del generation[kept:]  # in the copy only: lost by design
        if kept:
            end = sum(len(g) for g in self.generations[: self.path_generation + 1])
            self.hazard = max(self.hazard or 0, end)
        self.polled_since_rotation = False

    @precondition(lambda self: self.tail is not None)
    @rule()
    def poll(self):
        self.delivered += drain(self.tail)
        assert self.delivered == self.expected()
        if self.tail.resumed is not None and not self.copytruncated:
            # (after copytruncate a restart cannot always tell a truncated file
            # from another one: it starts over; the bytes above still agree)
            assert self.tail.resumed.exact, self.tail.resumed.reason
        self.read_upto = [len(g) for g in self.generations]
        self.polled_since_rotation = True

    @precondition(lambda self: self.tail is not None)
    @rule(fraction=st.floats(0, 1))
    def commit(self, fraction):
        position = self.committed + round(fraction * (self.tail.position - self.committed))
        self.checkpoint = {"delivered": self.base + position}
        self.tail.commit(position, self.checkpoint)
        self.tail.commit(self.committed)  # a late repeat of an older commit changes nothing
        self.committed = position
        if self.hazard is not None and self.base + position >= self.hazard:
            self.hazard = None

    @precondition(lambda self: self.tail is not None and self.hazard is None)
    @rule()
    def crash(self):
        self.tail.close()
        self.tail = None
        del self.delivered[self.base + self.committed :]
        left = len(self.delivered)
        for index, generation in enumerate(self.generations):
            self.read_upto[index] = min(left, len(generation))
            left -= self.read_upto[index]

    @precondition(lambda self: self.tail is None)
    @rule()
    def restart(self):
        self.tail = FileTail(self.path, self.state, max_read=MAX_READ)
        assert self.tail.checkpoint == self.checkpoint
        self.base, self.committed = len(self.delivered), 0

    @invariant()
    def nothing_repeated_or_out_of_order(self):
        assert self.expected().startswith(self.delivered)

    def teardown(self):
        if self.tail is not None:
            self.tail.close()
        self.writer.close()
        shutil.rmtree(self.dir, ignore_errors=True)


RotatingLog.TestCase.settings = settings(
    max_examples=max(10, settings().max_examples // 2), stateful_step_count=50, deadline=None
)
test_a_rotated_file_is_tailed_with_no_line_lost_or_repeated = RotatingLog.TestCase
