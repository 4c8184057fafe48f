"""How a tailed file is followed through rotation, and where a restart resumes
(SPEC §2 `--source file:PATH`, §4, §6).

Everything that decides what the tail of one path reads next lives here;
`keruta_actors/adapters/file_tail.py` only gathers the facts (stat of the path,
fstat of the open files, their first bytes, the saved offset) and carries out
the decisions.

A file is known by its identity, (device, inode), never by its name, and a
generation of it by a fingerprint of its first bytes, so that an inode number
reused by a new file, or a file truncated and written again past our offset,
is not taken for the file we were reading.

The two rotation schemes of logrotate:

- create (the default): `mv app.log app.log.1` and a new, empty `app.log`.
  The writer keeps writing into `app.log.1` until it reopens its log. The path
  now names another identity: `Reopen`. The new file is opened at once, but
  read only after the old one is read to its end *and* the new one holds data
  (`finished`): a single writer never writes the old file again once it has
  written the new one, so nothing written late into `app.log.1` is missed, and
  the old file's bytes all come before the new file's.
- copytruncate: `cp app.log app.log.1; truncate app.log`. Same identity, but
  the file is now shorter than our offset, or (written again past our offset
  before we looked) its first bytes changed: `Truncated`, read again from 0.
  Bytes written between our last read and the copy are in the copy only: they
  are lost, which is inherent to copytruncate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Bytes fingerprinted at the start of a file. Enough to tell two log files
# apart (a timestamp is in the first line), small enough to read every poll.
HEAD_BYTES = 256


@dataclass(frozen=True, slots=True)
class Identity:
    dev: int
    inode: int

    def __str__(self) -> str:
        return f"inode {self.inode} on device {self.dev}"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A digest of a file's first `length` bytes (at most HEAD_BYTES)."""

    length: int
    digest: str

    @classmethod
    def of(cls, head: bytes) -> Fingerprint:
        head = head[:HEAD_BYTES]
        return cls(len(head), hashlib.sha256(head).hexdigest())


EMPTY = Fingerprint.of(b"")


@dataclass(frozen=True, slots=True)
class FileStat:
    identity: Identity
    size: int


@dataclass(frozen=True, slots=True)
class Position:
    """Where we are in one open file: its identity, the offset of the next byte
    to read, and the fingerprint of the bytes we read at its start."""

    identity: Identity
    offset: int
    head: Fingerprint


# --- decisions while following ------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeepReading:
    """The path still names the file we read: read on from our offset."""


@dataclass(frozen=True, slots=True)
class Reopen:
    """The path names another file now (renamed and recreated). Open it, and
    read it once the open file is read to its end and the new one holds data."""

    reason: str


@dataclass(frozen=True, slots=True)
class Truncated:
    """The open file was truncated in place (copytruncate): read it from 0."""

    reason: str


@dataclass(frozen=True, slots=True)
class Missing:
    """Nothing readable at the path: keep reading the open file, look again
    at the next poll."""

    reason: str


Decision = KeepReading | Reopen | Truncated | Missing


def follow(
    current: Position,
    open_now: FileStat,
    head_now: Fingerprint,
    path_now: FileStat | None,
    older: frozenset[Identity] = frozenset(),
) -> Decision:
    """One poll's decision for the newest open file.

    `open_now` is the open file's own fstat, `head_now` the fingerprint of its
    first `current.head.length` bytes now, `path_now` a fresh stat of the path
    (None: nothing there), `older` the identities of older files still being
    read. A truncation is reported before a change at the path, because it
    concerns the bytes about to be read; the change is seen at the next poll.
    """
    if open_now.size < current.offset:
        return Truncated(f"the file shrank to {open_now.size} bytes, below our offset {current.offset}")
    if head_now != current.head:
        return Truncated("the file's first bytes changed: it was truncated and written again")
    if path_now is None:
        return Missing("the path does not exist")
    if path_now.identity == current.identity or path_now.identity in older:
        return KeepReading()
    return Reopen(f"the path now names {path_now.identity}, no longer {current.identity}")


def finished(at_end: bool, later_sizes: Sequence[int]) -> bool:
    """Whether an older file may be closed: it is read to its end and a later
    file holds data, so the writer has moved on.

    The later files' sizes must be taken *before* the read that found the end:
    then every byte the writer put into the old file before its first write
    into a new one was there to be read.
    """
    return at_end and any(size > 0 for size in later_sizes)


# --- where a new tail starts --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Saved:
    """What the state file holds for a path: the committed position (the
    first byte not yet handed on) and the files read after it, oldest first."""

    position: Position
    later: tuple[Identity, ...] = ()


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a new tail starts: files to read in order, each from its offset.
    `exact` is False when bytes may have been skipped (the saved file is gone,
    or changed beyond recognition); `reason` says why."""

    plan: tuple[tuple[Identity, int], ...]
    exact: bool
    reason: str


def resume(
    saved: Saved | None,
    path_now: FileStat | None,
    found: Mapping[Identity, FileStat],
    saved_head_now: Fingerprint | None,
    start_at_end: bool,
) -> Resume:
    """Where to start, from the saved position and what is on disk now.

    `found` maps identities from `saved` to the files that have them now
    (beside the path: rotated away), `saved_head_now` is the fingerprint of
    the saved file's first `saved.position.head.length` bytes now (None if it
    is nowhere). `start_at_end` applies only when nothing was saved: a saved
    offset is never skipped past, and a file we have not read is read whole.
    """
    if saved is None:
        if path_now is None:
            return Resume((), True, "no saved offset; the file does not exist yet")
        if start_at_end:
            return Resume(((path_now.identity, path_now.size),), True, "no saved offset: from the end of the file")
        return Resume(((path_now.identity, 0),), True, "no saved offset: from the start of the file")

    here = dict(found)
    if path_now is not None:
        here[path_now.identity] = path_now
    first = saved.position
    plan: list[tuple[Identity, int]] = []
    where = "" if path_now is not None and path_now.identity == first.identity else " (rotated away)"
    stat = here.get(first.identity)
    if stat is None:
        exact, reason = False, f"the file read last ({first.identity}) is gone: later files from their start"
    elif stat.size < first.offset or saved_head_now != first.head:
        plan.append((first.identity, 0))
        exact, reason = False, f"the file read last{where} changed since its offset was saved: from its start"
    else:
        plan.append((first.identity, first.offset))
        exact, reason = True, f"resumed at the saved offset {first.offset}{where}"
    gone = 0
    for identity in saved.later:
        if identity not in here:
            gone += 1
        elif all(identity != known for known, _ in plan):
            plan.append((identity, 0))
    if gone:
        exact, reason = False, f"{reason}; {gone} file(s) read after it are gone"
    if path_now is not None and all(path_now.identity != known for known, _ in plan):
        plan.append((path_now.identity, 0))
    return Resume(tuple(plan), exact, reason)
