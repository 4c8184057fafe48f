"""`--source file:PATH`: tail a file through rotation, with offsets that
survive a restart (SPEC §2, §4, §6).

A regular file is always "readable" to select/epoll, so a tail cannot be
woken by ThespianWatch: the reader polls it on its timer. Each `poll()`
returns everything new since the last one (up to `max_read` bytes), as one
byte stream across files: when `app.log` is renamed and created again, the
rest of the old file comes before the new file's first byte. The decisions
(reopen, truncated, missing, when an old file is done, where to resume) are
`keruta_actors.policy.rotation`'s; this module only does the I/O.

Positions and commits. Bytes are counted from 0 across the whole stream this
object returns; `position` is the count returned so far. The caller hands
bytes on and then calls `commit(n)`: the first n bytes of the stream are
safe. Only then does the state file move, to the file and offset holding
byte n, so a restart never skips a byte that was not committed.

What is promised, on a local file system, with one writer per file:
- While running: no byte returned twice; none lost, except what copytruncate
  loses by design (bytes written between our last poll and the copy are only
  in the copy) and except a file created and rotated away again between two
  polls before we saw it.
- Across a restart (crash included): reading resumes at the last committed
  byte, in the file that holds it even if it was renamed since (it is found
  by identity in the same directory), then the files opened after it, then
  the file now at the path. Bytes after the commit are read again
  (at-least-once; record ids make the repeat harmless). `resumed.exact` is
  False, with the reason, when a saved file is gone or changed beyond
  recognition, so that bytes may be missing.
- After a copytruncate, a writer that does not append (`cmd > app.log`)
  continues at its old offset, leaving a hole of NUL bytes at the start of
  the file; leading NUL bytes are skipped after a truncation.

Not promised: with several processes writing one file, bytes one of them
writes into the old file after another has written the new one may be
missed; a rotated file moved to another directory (logrotate's `olddir`) or
deleted (`compress` without `delaycompress`) while the agent is down cannot
be found again; a crash after copytruncate loses the bytes read before it but
not yet committed (they are in the copy only).

The state file is JSON, keyed by the absolute path, written as temp file +
fsync + rename (mode 0600), so it is always either the old or the new state.
Several tails may share one state file if they are driven from one thread.
"""

from __future__ import annotations

import errno
import json
import os
import stat as stat_module
from dataclasses import dataclass, field
from typing import Self

from keruta_actors.adapters.state_files import private_dir, write_atomically
from keruta_actors.policy.rotation import (
    HEAD_BYTES,
    FileStat,
    Fingerprint,
    Identity,
    Missing,
    Position,
    Reopen,
    Resume,
    Saved,
    Truncated,
    finished,
    follow,
    resume,
)

# At most this many bytes per poll: the same bound as a pipe read.
READ_SIZE = 1 << 20
STATE_VERSION = 1


@dataclass(eq=False)
class _Generation:
    """One file's contents from offset 0 up to a truncation."""

    identity: Identity
    head: bytearray = field(default_factory=bytearray)  # its first HEAD_BYTES bytes, as read


@dataclass(eq=False)
class _Open:
    fd: int
    gen: _Generation
    offset: int
    skip_nul: bool = False  # after a truncation: NULs at the start are a hole


@dataclass(eq=False)
class _Segment:
    """Stream bytes [start, start + length) are file bytes [offset, ...) of `gen`."""

    start: int
    gen: _Generation
    offset: int
    length: int


class FileTail:
    """The tail of one path. Opens what is there at once (so bytes written
    before the first poll, even into a file rotated away meanwhile, are read);
    a path that does not exist yet is looked for at every poll.

    Attributes for the caller: `position` (stream bytes returned so far),
    `line_end` (stream position just past the last newline returned: commit
    this to avoid resuming mid-line), `more` (the last poll stopped at
    `max_read`: poll again without waiting), `committed`, `checkpoint`,
    `resumed` (a `rotation.Resume`: where reading started and why) and
    `last_decision` (the policy's last `KeepReading`, `Reopen`, `Truncated`
    or `Missing`, each with its reason, for the caller to report).
    Errors reading the files or writing the state file are OSError.
    """

    def __init__(self, path: str, state_path: str | None = None, start_at_end: bool = False,
                 max_read: int = READ_SIZE) -> None:
        if max_read < 1:
            raise ValueError(f"max_read must be >= 1, got {max_read}")
        self.path = os.path.abspath(path)
        self.state_path = state_path
        self.max_read = max_read
        self.position = 0  # stream bytes returned so far
        self.line_end = 0  # stream position just past the last b"\n" returned
        self.more = False  # the last poll stopped at max_read: poll again soon
        self.resumed: Resume | None = None  # how reading started; None until a file is found
        self.last_decision = None  # the policy's last word on the path, for the caller to report
        self.committed = 0
        self._handles: list[_Open] = []  # oldest first; only the first is being read
        self._segments: list[_Segment] = []
        self._closed = False
        self._start_at_end = start_at_end and _stat(self.path) is not None
        self._saved, self.checkpoint, self._state_problem = self._load()
        self._last_saved: object = None
        # Open now: whatever is written to the file from here on is ours,
        # even if it is rotated away before the first poll.
        self._start()

    # --- the interface ---------------------------------------------------

    def poll(self) -> bytes:
        """Everything new since the last poll, at most `max_read` bytes;
        b"" while the file does not exist."""
        if self._closed:
            raise ValueError("poll() on a closed FileTail")
        self.more = False
        if not self._handles and not self._start():
            return b""
        self._look_at_path()
        data = self._drain()
        start = self.position
        self.position += len(data)
        newline = data.rfind(b"\n")
        if newline >= 0:
            self.line_end = start + newline + 1
        return data

    def commit(self, position: int, checkpoint: dict | None = None) -> None:
        """The first `position` bytes of the stream have been handed on: save
        the offset of the byte after them, with `checkpoint` (JSON data handed
        back as `self.checkpoint` after a restart; None keeps the last one).
        A position below the last commit is ignored, so commits may repeat."""
        if not 0 <= position <= self.position:
            raise ValueError(f"cannot commit {position}: only {self.position} bytes were returned")
        if position < self.committed:
            return
        if checkpoint is not None:
            self.checkpoint = checkpoint
        self.committed = position
        self._save()

    def close(self) -> None:
        for handle in self._handles:
            os.close(handle.fd)
        self._handles.clear()
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- starting --------------------------------------------------------

    def _start(self) -> bool:
        """Open the files to read, the first time anything is there."""
        path_now = _stat(self.path)
        if self.resumed is None:
            if not self._plan(path_now):
                return False
        elif path_now is not None:
            self._queue(self.path, 0)  # what was planned could not be opened
        if not self._handles:
            return False
        first = self._handles[0]
        self._segments.append(_Segment(self.position, first.gen, first.offset, 0))
        self._save()
        return True

    def _plan(self, path_now: FileStat | None) -> bool:
        saved = self._saved
        wanted = set() if saved is None else {saved.position.identity, *saved.later}
        if path_now is not None:
            wanted.discard(path_now.identity)
        found = _find_in_directory(os.path.dirname(self.path), wanted)
        names = {identity: name for identity, (name, _) in found.items()}
        if path_now is not None:
            names[path_now.identity] = self.path
        saved_head = None
        if saved is not None and saved.position.identity in names:
            saved_head = _fingerprint_at(names[saved.position.identity], saved.position.head.length)
        stats = {identity: st for identity, (_, st) in found.items()}
        plan = resume(saved, path_now, stats, saved_head, self._start_at_end and not self._state_problem)
        if not plan.plan:
            self.last_decision = Missing(plan.reason)
            return False
        if self._state_problem:
            plan = Resume(plan.plan, False, f"{self._state_problem}; {plan.reason}")
        self.resumed = plan
        for identity, offset in plan.plan:
            self._queue(names[identity], offset, identity)
        return True

    def _queue(self, name: str, offset: int, expected: Identity | None = None) -> None:
        """Open `name` behind the files already open, unless it is one of them."""
        try:
            fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            self.last_decision = Missing(f"cannot open {name}: {error.strerror}")
            return
        st = os.fstat(fd)
        identity = Identity(st.st_dev, st.st_ino)
        known = {handle.gen.identity for handle in self._handles}
        if not stat_module.S_ISREG(st.st_mode) or identity in known or expected not in (None, identity):
            os.close(fd)  # replaced again since we looked: the next poll sees the new one
            return
        gen = _Generation(identity)
        if offset:
            gen.head += os.pread(fd, min(offset, HEAD_BYTES), 0)
        self._handles.append(_Open(fd, gen, offset))

    # --- following ------------------------------------------------------

    def _look_at_path(self) -> None:
        newest = self._handles[-1]
        size = os.fstat(newest.fd).st_size
        current = Position(newest.gen.identity, newest.offset, Fingerprint.of(bytes(newest.gen.head)))
        head_now = current.head
        if current.head.length:
            head_now = Fingerprint.of(os.pread(newest.fd, current.head.length, 0))
        older = frozenset(handle.gen.identity for handle in self._handles[:-1])
        decision = follow(current, FileStat(current.identity, size), head_now, _stat(self.path), older)
        if isinstance(decision, Truncated):
            newest.gen = _Generation(current.identity)
            newest.offset, newest.skip_nul = 0, True
            if len(self._handles) == 1:  # it is being read: the stream goes on at its start
                self._segments.append(_Segment(self.position, newest.gen, 0, 0))
        elif isinstance(decision, Reopen):
            count = len(self._handles)
            self._queue(self.path, 0)
            if len(self._handles) > count:
                self._save()  # a restart must know that this file comes next
        self.last_decision = decision

    def _drain(self) -> bytes:
        out: list[bytes] = []
        at = self.position
        budget = self.max_read
        while True:
            handle = self._handles[0]
            # the later files' sizes before the read: see rotation.finished
            later_sizes = [os.fstat(later.fd).st_size for later in self._handles[1:]]
            data, at_end = self._read(handle, budget)
            if data:
                self._record(at, handle, data)
                out.append(data)
                at += len(data)
                budget -= len(data)
            if not at_end:
                self.more = True
                break
            if not finished(at_end, later_sizes):
                break
            os.close(self._handles.pop(0).fd)
            following = self._handles[0]
            self._segments.append(_Segment(at, following.gen, following.offset, 0))
            if budget == 0:
                self.more = True
                break
        return b"".join(out)

    def _read(self, handle: _Open, budget: int) -> tuple[bytes, bool]:
        """Up to `budget` new bytes of `handle`, and whether it is read to its end."""
        size = os.fstat(handle.fd).st_size
        if handle.skip_nul and handle.offset < size:
            handle.offset = _next_data(handle.fd, handle.offset, size)
        want = min(budget, size - handle.offset)
        if want <= 0:
            return b"", True
        start = handle.offset
        raw = os.pread(handle.fd, want, start)
        self._remember_head(handle, start, raw)
        data = raw
        if handle.skip_nul:
            data = raw.lstrip(b"\0")
            handle.skip_nul = not data
        handle.offset = start + len(raw)
        return data, len(raw) < want or handle.offset >= size

    @staticmethod
    def _remember_head(handle: _Open, start: int, raw: bytes) -> None:
        head = handle.gen.head
        if len(head) >= HEAD_BYTES:
            return
        if start <= len(head):
            head += raw[len(head) - start : HEAD_BYTES - start]
        else:  # a hole was skipped: read the head as it is on disk
            head[:] = os.pread(handle.fd, min(start + len(raw), HEAD_BYTES), 0)

    def _record(self, at: int, handle: _Open, data: bytes) -> None:
        offset = handle.offset - len(data)
        last = self._segments[-1] if self._segments else None
        if (last is not None and last.gen is handle.gen and last.start + last.length == at
                and last.offset + last.length == offset):
            last.length += len(data)
        else:
            self._segments.append(_Segment(at, handle.gen, offset, len(data)))

    # --- the state file ---------------------------------------------------

    def _save(self) -> None:
        """Write where the first uncommitted byte is, and the files after it."""
        if self.state_path is None:
            return
        if not self._segments:
            if self._saved is not None:  # nothing opened yet: keep the saved place
                self._write(self._saved)
            return
        index = max(i for i, segment in enumerate(self._segments) if segment.start <= self.committed)
        del self._segments[:index]  # nothing before the commit is needed again
        first = self._segments[0]
        later: list[Identity] = []
        for identity in [s.gen.identity for s in self._segments[1:]] + [h.gen.identity for h in self._handles]:
            if identity != first.gen.identity and identity not in later:
                later.append(identity)
        offset = first.offset + self.committed - first.start
        position = Position(first.gen.identity, offset, Fingerprint.of(bytes(first.gen.head)))
        self._write(Saved(position, tuple(later)))

    def _write(self, saved: Saved) -> None:
        position = saved.position
        entry = {
            "dev": position.identity.dev,
            "inode": position.identity.inode,
            "offset": position.offset,
            "headLength": position.head.length,
            "headSha256": position.head.digest,
            "later": [[identity.dev, identity.inode] for identity in saved.later],
            "checkpoint": self.checkpoint,
        }
        if entry != self._last_saved:
            _write_entry(self.state_path, self.path, entry)
            self._last_saved = entry

    def _load(self) -> tuple[Saved | None, dict | None, str | None]:
        """(saved position, checkpoint, problem) from the state file."""
        if self.state_path is None:
            return None, None, None
        try:
            entry = _read_state(self.state_path)["sources"].get(self.path)
            if entry is None:
                return None, None, None
            saved = Saved(
                Position(
                    Identity(int(entry["dev"]), int(entry["inode"])),
                    int(entry["offset"]),
                    Fingerprint(int(entry["headLength"]), str(entry["headSha256"])),
                ),
                tuple(Identity(int(dev), int(inode)) for dev, inode in entry["later"]),
            )
            return saved, entry.get("checkpoint"), None
        except FileNotFoundError:
            return None, None, None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            return None, None, f"the state file {self.state_path} is unreadable ({error})"


def _stat(path: str) -> FileStat | None:
    """The regular file at `path`, or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_module.S_ISREG(st.st_mode):
        return None
    return FileStat(Identity(st.st_dev, st.st_ino), st.st_size)


def _fingerprint_at(name: str, length: int) -> Fingerprint | None:
    try:
        with open(name, "rb") as file:
            return Fingerprint.of(file.read(length))
    except OSError:
        return None


def _find_in_directory(directory: str, wanted: set[Identity]) -> dict[Identity, tuple[str, FileStat]]:
    """Files in `directory` with one of the `wanted` identities: where a
    rotated file went, whatever the rotation named it."""
    found: dict[Identity, tuple[str, FileStat]] = {}
    inodes = {identity.inode for identity in wanted}
    if not inodes:
        return found
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return found
    for entry in entries:
        try:
            if entry.inode() not in inodes:
                continue
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        identity = Identity(st.st_dev, st.st_ino)
        if identity in wanted and stat_module.S_ISREG(st.st_mode):
            found[identity] = (entry.path, FileStat(identity, st.st_size))
    return found


def _next_data(fd: int, offset: int, size: int) -> int:
    """The first offset at or after `offset` that is not in a hole."""
    try:
        return os.lseek(fd, offset, os.SEEK_DATA)
    except OSError as error:
        # ENXIO: only a hole up to the end; otherwise holes are not reported here
        return size if error.errno == errno.ENXIO else offset


def _read_state(state_path: str) -> dict:
    with open(state_path, encoding="utf-8") as file:
        state = json.load(file)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION or not isinstance(state.get("sources"), dict):
        raise ValueError("not a version-1 tail state")
    return state


def _write_entry(state_path: str, key: str, entry: dict) -> None:
    """Replace the entry for `key`, keeping the others."""
    private_dir(os.path.dirname(os.path.abspath(state_path)))
    try:
        state = _read_state(state_path)
    except (OSError, ValueError):
        state = {"version": STATE_VERSION, "sources": {}}
    state["sources"][key] = entry
    write_atomically(state_path, json.dumps(state, sort_keys=True).encode())
