"""The source reader's side of the write-ahead spool (SPEC §6): every block
read is appended before it goes anywhere, and what the pipeline cannot take
yet is read back from the spool later (the decisions: policy/overflow.py).

It also keeps the reader's half of the run's account: records read per
stream, what the spool held from earlier runs when it was opened, and what
it still holds at the end.

A spool that cannot be opened, or that fails while running, is reported in
one line, once; the run goes on with memory-only backpressure (the child
waits on its pipe while the pipeline is full) and loses nothing already read.
fsync ("interval") runs on a worker thread, never on the agent's loop.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable, Iterator

from keruta_actors.adapters.spool import START, Spool, SyncJob
from keruta_actors.errors import SpoolError
from keruta_actors.policy.overflow import Overflow
from keruta_actors.records import RecordBlock

StreamKey = tuple  # (namespace, source)


class WriteAhead:
    def __init__(self, spool: Spool | None, log: logging.Logger, problem: str = "") -> None:
        self.spool = spool
        self.log = log
        self.problem = problem  # the one line about the spool failing, if it did
        self.directory = spool.directory if spool is not None else ""
        self.read: Counter[StreamKey] = Counter()  # records read this run, per stream
        self.held_at_open: dict[StreamKey, int] = {}  # unconfirmed records an earlier run left
        self.full_reported = False
        self.was_full = False
        self.syncing = False
        if spool is None:
            self.overflow = Overflow(START, START, spooling=False)
            return
        self.overflow = Overflow(START, spool.position)
        self.held_at_open = {(s.stream.namespace, s.stream.source): s.records for s in spool.status() if s.records}

    @classmethod
    def open(cls, state_dir: str, task_id: str, settings, log: logging.Logger, enabled: bool = True) -> "WriteAhead":
        if not enabled:
            return cls(None, log)
        try:
            return cls(Spool.open(state_dir, task_id, settings), log)
        except SpoolError as error:
            log.error("%s; going on without the spool: nothing is written ahead, and a full pipeline "
                      "holds the sources back", error)
            return cls(None, log, str(error))

    @property
    def run_id(self) -> str | None:
        return self.spool.run_id if self.spool is not None else None

    def last_line_number(self, namespace: str, source: str) -> int:
        return self.spool.last_line_number(namespace, source) if self.spool is not None else 0

    # -- the hot path: once per block read ----------------------------------------------

    def take(self, block: RecordBlock, room: bool) -> RecordBlock | None:
        """Append `block`; returns what to send now (None: it waits)."""
        if self.overflow.spooling:
            before = self.spool.position
            try:
                spooled = self.spool.append(block)
            except SpoolError as error:
                self._failed(error)
            else:
                if len(spooled):
                    self.read[spooled.stream] += len(spooled)
                if self.overflow.appended(before, self.spool.position, room) and len(spooled):
                    return spooled
                return None
        self.read[block.stream] += len(block)
        return block if self.overflow.unspooled(block, room) else None

    def may_read(self, room: bool) -> bool:
        full = self.overflow.spooling and self.spool.full
        if full != self.was_full:
            self.was_full = full
            if full and not self.full_reported:  # said once a run: a spool at its cap fills again and again
                self.full_reported = True
                self.log.warning(
                    "spool full: %s holds %d bytes (logStreaming.spool.maxSize %d); the sources are read only "
                    "as the keruta API confirms what it holds (the command waits on its output; nothing is dropped)",
                    self.directory, self.spool.size, self.spool.max_size)
            else:
                self.log.debug("spool %s", "full" if full else "no longer full")
        return self.overflow.may_read(full, room)

    def backlog(self, room: Callable[[], bool]) -> Iterator[RecordBlock]:
        """Blocks waiting on disk, then in memory, in order, while `room()`."""
        if self.overflow.on_disk and room():
            try:
                exhausted = True
                for block, after in self.spool.blocks(self.overflow.cursor):
                    self.overflow.replayed(after)
                    if len(block):
                        yield block
                    if not room():
                        exhausted = False
                        break
                if exhausted:
                    self.overflow.replayed(self.overflow.end)
            except (SpoolError, OSError) as error:
                self._failed(error if isinstance(error, SpoolError) else
                             SpoolError.from_os_error(error, "read", self.directory))
                self.overflow.disk_unreadable()
        while room():
            block = self.overflow.next_from_memory()
            if block is None:
                return
            yield block

    @property
    def unsynced(self) -> bool:
        """Written and not yet fsynced, under `fsync: interval`: the timer has work."""
        return self.spool is not None and self.overflow.spooling and self.spool.dirty

    @property
    def caught_up(self) -> bool:
        return self.overflow.caught_up

    # -- confirmations, fsync, the end ------------------------------------------------

    def report(self, meter) -> None:
        """The spool's bytes and unconfirmed records, for the metrics."""
        if self.spool is not None:
            meter.spool(self.spool.size, self.spool.pending)

    def confirm(self, progress) -> None:
        """Streams' watermarks ((namespace, source), line): the spool may forget below them."""
        if self.spool is None:
            return
        try:
            for (namespace, source), line in progress:
                self.spool.confirm(namespace, source, line)
        except SpoolError as error:
            self._failed(error)

    def sync_job(self, now: float) -> SyncJob | None:
        """The interval fsync's job, for a worker thread, when it is due."""
        if self.spool is None or self.syncing or not self.overflow.spooling:
            return None
        try:
            job = self.spool.begin_sync(now)
        except SpoolError as error:
            self._failed(error)
            return None
        self.syncing = job is not None
        return job

    def synced(self, result) -> None:
        self.syncing = False
        if isinstance(result, SpoolError):
            self._failed(result)
        elif isinstance(result, Exception):
            self._failed(SpoolError(f"spool: cannot sync {self.directory}: {result}", self.directory))

    def close(self) -> dict[StreamKey, int]:
        """Let the spool go; returns what it still holds, per stream."""
        if self.spool is None:
            return {}
        left: dict[StreamKey, int] = {}
        try:
            left = {(s.stream.namespace, s.stream.source): s.records for s in self.spool.status() if s.records}
        except (SpoolError, OSError) as error:
            self.log.error("spool: cannot tell what %s holds: %s", self.directory, error)
        try:
            self.spool.close()
        except SpoolError as error:
            self._failed(error)
        self.spool = None
        return left

    def _failed(self, error: SpoolError) -> None:
        """One line, once; from here on, memory-only backpressure."""
        if not self.problem:
            self.problem = str(error)
            self.log.error("%s; going on without the spool: records read from now on are held in memory, and a "
                           "full pipeline holds the sources back (nothing read is dropped)", error)
        self.overflow.spooling = False

