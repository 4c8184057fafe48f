"""The write-ahead spool (SPEC §6): every record read is appended here before
the agent holds it, and stays until the server confirms it. It is also the
overflow: what does not fit in memory is read back from here.

One spool per task, in `{stateDir}/{task}.spool/`, files 0600 in a 0700
directory (layout and recovery: `spool_files.py`; frames:
`policy/spool_frames.py`; decisions: `policy/spool.py`).

The interface:

    Spool.open(state_dir, task_id, settings) -> Spool
        lock, check every frame, cut off a torn or damaged tail (reported once,
        in `damage` and the log), delete what is confirmed.
    spool.run_id                   this task's stable id prefix: use it where a
                                   fresh run id was used, so ids survive restarts
    spool.last_line_number(namespace, source) -> int
                                   number a stream's new lines after this
    spool.append(block) -> RecordBlock
                                   one os.writev of one frame; returns the records
                                   spooled: the block less any already spooled
    spool.position                 where the next frame will go
    spool.blocks(start=START) -> iterator of (RecordBlock, Position after it)
                                   unconfirmed records in append order; appends
                                   made while iterating are seen
    spool.confirm(namespace, source, line_number)
                                   every record of the stream up to the line is done
    spool.sync_if_due(now) -> bool    the timer's fsync (`logStreaming.spool.fsync`)
    spool.begin_sync(now) -> SyncJob | None
                                   the same, as a job for a worker thread
    spool.size, spool.full, spool.would_exceed(n)      against `maxSize`
    spool.status() -> tuple[StreamStatus, ...]          for `spool status`
    spool.close()

What is promised: a block `append` returned is on disk (in the page cache at
least) and survives a SIGKILL; with fsync "always" it survives a machine
crash, with "interval" all but the last interval. Each unconfirmed record is
given by `blocks()` once per iteration, in order, under its id; a confirmed one
never again, even after a restart. OSError becomes SpoolError, one line naming
the path; after it, what was appended before is still there.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Iterator

from keruta_actors.adapters.spool_files import MARKS, DamageReport, Recovered, Segment, lock, recover, report, \
    save_state, segment_frames
from keruta_actors.adapters.state_files import fsync_dir, open_private, private_dir, task_file_name, write_all
from keruta_actors.errors import SpoolError
from keruta_actors.policy.spool import FsyncPolicy, Limits, StatusTally, StreamStatus, deletable, \
    unconfirmed_start
from keruta_actors.policy.spool_frames import HEADER_SIZE, Header, MetadataCodec, Stream, decode_records, \
    encode_mark, encode_records, stream_of
from keruta_actors.records import SOURCES, RecordBlock

log = logging.getLogger(__name__)

# Fold marks.log into spool.json beyond this size: keeps restarts quick.
MARKS_FOLD_SIZE = 1 << 20


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the spool: a segment number and an offset in it."""

    segment: int
    offset: int


START = Position(0, 0)


class Spool:
    """One task's spool, used from one thread (see the module's docstring).
    `settings` is a `config.SpoolSettings`."""

    def __init__(self, directory: str, settings, lock_fd: int, recovered: Recovered) -> None:
        self.directory = directory
        self.run_id = recovered.run_id
        self.damage = list(recovered.damage)
        self._limits = Limits(settings.max_size, settings.segment_size)
        self._fsync = FsyncPolicy(settings.fsync, settings.fsync_interval)
        self._lock_fd = lock_fd
        self._codec = MetadataCodec()
        self._reported = set(self.damage)
        self._watermarks = recovered.watermarks
        self._segments: dict[int, Segment] = recovered.segments
        self._high = dict(self._watermarks)  # stream -> highest lineNumber spooled or confirmed
        for segment in self._segments.values():
            for stream, last in segment.lasts.items():
                self._high[stream] = max(last, self._high.get(stream, 0))
        self.size = sum(segment.size for segment in self._segments.values())
        self._highest = max(self._segments, default=0)  # the highest segment number used
        self._active: Segment | None = None
        self._active_fd = -1
        self._unsynced: list[int] = []  # retired segments' descriptors, for the next sync
        self._dirty = self._dir_dirty = False
        self._clean_since = float("-inf")
        self._delete(deletable(self._lasts(), self._watermarks, None))
        self._marks_path = os.path.join(directory, MARKS)
        self._marks_fd = open_private(self._marks_path, os.O_WRONLY | os.O_APPEND)  # last: nothing to undo
        self._marks_size = 0

    @staticmethod
    def directory_for(state_dir: str, task_id: str) -> str:
        return os.path.join(state_dir, f"{task_file_name(task_id)}.spool")

    @classmethod
    def open(cls, state_dir: str, task_id: str, settings) -> "Spool":
        """The task's spool; SpoolError if the disk refuses or another agent has it."""
        directory = cls.directory_for(state_dir, task_id)
        lock_fd = -1
        try:
            private_dir(state_dir)
            private_dir(directory)
            lock_fd = lock(directory)
            return cls(directory, settings, lock_fd, recover(directory))
        except OSError as error:
            if lock_fd >= 0:
                os.close(lock_fd)
            raise SpoolError.from_os_error(error, "open", error.filename or directory) from None

    # --- appending -----------------------------------------------------------------

    def last_line_number(self, namespace: str, source: str) -> int:
        """The highest lineNumber of the stream spooled or confirmed (0: none)."""
        return self._high.get(Stream(namespace, source), 0)

    def append(self, block: RecordBlock) -> RecordBlock:
        """Write a block of one stream (lineNumbers ascending) as one frame.
        Records at or below `last_line_number` are already here and are left
        out, so appending twice is harmless; returns what was spooled."""
        count = len(block)
        if not count:
            return block
        code = block.sources[0]
        if block.sources.count(code) != count:
            raise ValueError("a spooled block must hold records of one source")
        stream = Stream(block.run_id, SOURCES[code])
        high = self._high.get(stream, 0)
        if block.line_numbers[0] <= high:
            block = block.span(unconfirmed_start(block.line_numbers, high), count)
            if not len(block):
                return block
        parts, size = encode_records(block, self._codec)
        segment = self._segment_for(size)
        self._write(segment, parts, size)
        last = block.line_numbers[-1]
        segment.lasts[stream] = self._high[stream] = last
        return block

    @property
    def position(self) -> Position:
        if self._active is not None:
            return Position(self._active.number, self._active.size)
        return Position(self._next_number(), 0)

    @property
    def dirty(self) -> bool:
        """Written since the last sync, with fsync "interval" (the timer's work)."""
        return self._dirty and self._fsync.mode == "interval"

    @property
    def pending(self) -> int:
        """Records spooled and not yet confirmed. Every line read is spooled
        and numbered, so per stream that is its highest line number less its
        watermark: no frame need be read (`status` reads them all)."""
        return sum(high - self._watermarks.get(stream, 0) for stream, high in self._high.items())

    @property
    def max_size(self) -> int:
        return self._limits.max_size

    @property
    def full(self) -> bool:
        return self._limits.full(self.size)

    def would_exceed(self, more: int) -> bool:
        return self._limits.would_exceed(self.size, more)

    def _segment_for(self, size: int) -> Segment:
        if self._active is None or self._limits.rotate(self._active.size, size):
            self._start_segment()
        return self._active

    def _start_segment(self) -> None:
        self._retire_active()
        segment = Segment(self.directory, self._next_number())
        try:
            self._active_fd = open_private(segment.path, os.O_WRONLY | os.O_APPEND | os.O_EXCL)
        except OSError as error:
            raise SpoolError.from_os_error(error, "create", segment.path) from None
        self._active = self._segments[segment.number] = segment
        self._highest = segment.number
        self._dir_dirty = True

    def _next_number(self) -> int:
        """Numbers only grow while the spool is open, even once every segment
        is gone: a reader's position in a deleted segment must stay behind
        every later frame."""
        return self._highest + 1

    def _retire_active(self) -> None:
        if self._active is None:
            return
        if self._dirty and self._fsync.mode == "interval":
            self._unsynced.append(self._active_fd)
        else:
            os.close(self._active_fd)
        self._active, self._active_fd = None, -1

    def _write(self, segment: Segment, parts: list, size: int) -> None:
        try:
            written = os.writev(self._active_fd, parts)
            if written < size:  # only near a limit; the rest then fails or fits
                write_all(self._active_fd, b"".join(map(bytes, parts))[written:])
        except OSError as error:
            self._roll_back(segment)
            raise SpoolError.from_os_error(error, "write", segment.path) from None
        segment.size += size
        self.size += size
        self._wrote()

    def _roll_back(self, segment: Segment) -> None:
        """Cut a half-written frame off, and write the next one elsewhere:
        if the cut fails, the next open finds the torn frame and drops it."""
        try:
            os.ftruncate(self._active_fd, segment.size)
        except OSError:
            pass
        self._retire_active()

    def _wrote(self) -> None:
        self._dirty = True
        if self._fsync.after_write():
            self.sync()

    # --- reading -------------------------------------------------------------------

    def blocks(self, start: Position = START) -> Iterator[tuple[RecordBlock, Position]]:
        """Every unconfirmed record from `start` on, frame by frame in append
        order (so in lineNumber order per stream), with the position after
        each frame: iterate again from there to go on later."""
        for segment, offset, header, payload, watermark in self._pending(start):
            block = self._decode(segment, offset, header, payload)
            if block is None:
                continue
            if header.first <= watermark:
                block = block.span(unconfirmed_start(block.line_numbers, watermark), len(block))
            yield block, Position(segment.number, offset + header.frame_size)

    def _pending(self, start: Position) -> Iterator[tuple[Segment, int, Header, memoryview, int]]:
        """Frames holding an unconfirmed record, with their stream's watermark."""
        for segment, offset, header, frame in self._frames(start):
            payload = frame[HEADER_SIZE:]
            watermark = self._watermarks.get(stream_of(header, payload), 0)
            if header.last > watermark:
                yield segment, offset, header, payload, watermark

    def _decode(self, segment: Segment, offset: int, header: Header, payload: memoryview) -> RecordBlock | None:
        block = decode_records(header, payload, self._codec)
        if block is None:
            self._report(DamageReport(segment.path, offset, header.frame_size))
        return block

    def _frames(self, start: Position) -> Iterator[tuple[Segment, int, Header, memoryview]]:
        """Segments may come and go between two frames: each next one is
        looked up afresh."""
        number = start.segment
        while True:
            number = min((n for n in self._segments if n >= number), default=None)
            if number is None:
                return
            segment = self._segments[number]
            offset = start.offset if number == start.segment else 0
            for at, header, frame in segment_frames(segment, offset, self._report):
                yield segment, at, header, frame
            number += 1

    # --- confirming and deleting ---------------------------------------------------

    def confirm(self, namespace: str, source: str, line_number: int) -> None:
        """Every record of the stream up to `line_number` is done with
        (delivered, or not shipped on purpose). Lower or repeated
        confirmations are ignored. Segments left wholly confirmed are deleted."""
        stream = Stream(namespace, source)
        if line_number <= self._watermarks.get(stream, 0):
            return
        mark = encode_mark(stream, line_number)
        try:
            write_all(self._marks_fd, mark)
        except OSError as error:
            raise SpoolError.from_os_error(error, "write", self._marks_path) from None
        self._watermarks[stream] = line_number
        self._high[stream] = max(line_number, self._high.get(stream, 0))
        self._marks_size += len(mark)
        self._wrote()
        # A full spool lets its active segment go too, or a cap of one segment would never clear.
        keep = None if self.full or self._active is None else self._active.number
        doomed = deletable(self._lasts(), self._watermarks, keep)
        if doomed or self._marks_size > MARKS_FOLD_SIZE:
            try:
                save_state(self.directory, self.run_id, self._watermarks)
                os.ftruncate(self._marks_fd, 0)
            except OSError as error:
                raise SpoolError.from_os_error(error, "write", error.filename or self._marks_path) from None
            self._marks_size = 0
            self._delete(doomed)

    def _lasts(self) -> dict[int, dict[Stream, int]]:
        return {number: segment.lasts for number, segment in self._segments.items()}

    def _delete(self, numbers: list[int]) -> None:
        """Only once the watermarks that allow it are durable: otherwise a
        machine crash could leave a stream numbered again from a lower line."""
        for number in numbers:
            if self._active is not None and number == self._active.number:
                self._retire_active()
            segment = self._segments.pop(number)
            self.size -= segment.size
            try:
                os.unlink(segment.path)
            except OSError as error:  # it stays; its records are confirmed, never sent again
                log.warning("spool: cannot delete %s: %s", segment.path, error.strerror)

    # --- syncing -------------------------------------------------------------------

    def sync_if_due(self, now: float) -> bool:
        """For the timer: fsync if the policy says it is time. True if it did."""
        if not self._dirty:
            self._clean_since = now
            return False
        if not self._fsync.due(self._dirty, self._clean_since, now):
            return False
        self.sync()
        self._clean_since = now
        return True

    def begin_sync(self, now: float) -> "SyncJob | None":
        """For a timer whose fsync must not block its thread: if the policy
        says it is time, a job that syncs everything written so far, to run
        on another thread (it holds descriptors of its own, so the spool may
        go on appending, rotating and deleting meanwhile). None if not due."""
        if not self._dirty:
            self._clean_since = now
            return None
        if not self._fsync.due(self._dirty, self._clean_since, now):
            return None
        try:
            fds = [os.dup(fd) for fd in [*self._unsynced, self._active_fd, self._marks_fd] if fd >= 0]
        except OSError as error:
            raise SpoolError.from_os_error(error, "sync", self.directory) from None
        for fd in self._unsynced:
            os.close(fd)
        job = SyncJob(self.directory, fds, self._dir_dirty)
        self._unsynced.clear()
        self._dirty = self._dir_dirty = False
        self._clean_since = now
        return job

    def sync(self) -> None:
        """Make everything written so far survive a machine crash."""
        try:
            for fd in [*self._unsynced, self._active_fd, self._marks_fd]:
                if fd >= 0:
                    os.fdatasync(fd)
            if self._dir_dirty:
                fsync_dir(self.directory)
        except OSError as error:
            raise SpoolError.from_os_error(error, "sync", self.directory) from None
        for fd in self._unsynced:
            os.close(fd)
        self._unsynced.clear()
        self._dirty = self._dir_dirty = False

    # --- status and closing -----------------------------------------------------

    def status(self) -> tuple[StreamStatus, ...]:
        """Per stream: unconfirmed records, their frames' bytes, the first
        unconfirmed and last spooled lineNumber, the watermark."""
        tally = StatusTally(self._watermarks, self._high)
        for segment, offset, header, payload, watermark in self._pending(START):
            records, first = header.count, header.first
            if first <= watermark:  # only this frame's line numbers say how many are left
                block = self._decode(segment, offset, header, payload)
                if block is None:
                    continue
                skipped = unconfirmed_start(block.line_numbers, watermark)
                records, first = records - skipped, block.line_numbers[skipped]
            tally.add(stream_of(header, payload), records, header.frame_size, first)
        return tally.result()

    def close(self) -> None:
        """Sync (unless fsync is "never") and let go of the spool."""
        try:
            if self._fsync.mode != "never" and (self._dirty or self._dir_dirty):
                self.sync()
        finally:
            for fd in [*self._unsynced, self._active_fd, self._marks_fd, self._lock_fd]:
                if fd >= 0:
                    os.close(fd)
            self._unsynced.clear()
            self._active, self._active_fd = None, -1
            self._marks_fd = self._lock_fd = -1

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _report(self, damage: DamageReport) -> None:
        """Damage met while running (the disk changed under us): once each."""
        if damage not in self._reported:
            self._reported.add(damage)
            self.damage.append(damage)
            report(damage)


class SyncJob:
    """An fsync of what a spool had written when the job was made
    (`Spool.begin_sync`), on descriptors of its own: run it once, on any
    thread. SpoolError if the disk refuses."""

    def __init__(self, directory: str, fds: list[int], directory_too: bool) -> None:
        self.directory = directory
        self._fds = fds
        self._directory_too = directory_too

    def __call__(self) -> None:
        try:
            for fd in self._fds:
                os.fdatasync(fd)
            if self._directory_too:
                fsync_dir(self.directory)
        except OSError as error:
            raise SpoolError.from_os_error(error, "sync", self.directory) from None
        finally:
            for fd in self._fds:
                os.close(fd)
            self._fds = []
