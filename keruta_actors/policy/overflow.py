"""Where the source reader's records go down the pipeline from: memory or
the spool (SPEC §6: the spool is the overflow beyond the in-memory window).

Every record read is appended to the spool first. A block just appended goes
on from memory when nothing older is still waiting on disk and the pipeline
has room; otherwise it stays on disk and one cursor, starting at the spool's
beginning (so records an earlier run left are sent first), reads it back, in
append order, as the pipeline takes more. The child is therefore never held
back by a slow transport or a rate limit, only by the spool's cap.

Once the spool has failed, records read go on from memory, behind whatever
still waits on disk, and reading waits for room (memory-only backpressure):
nothing already read is lost.

Positions are the spool's (ordered, opaque here). Nothing in this module
does I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class Overflow:
    def __init__(self, start: Any, end: Any, spooling: bool = True) -> None:
        self.cursor = start  # everything before it has gone down the pipeline (or is confirmed)
        self.end = end  # where the spool's next append goes
        self.spooling = spooling  # False once the spool cannot take appends
        self._memory: deque = deque()  # read without the spool, waiting behind the disk

    # -- facts ---------------------------------------------------------------------

    def appended(self, before: Any, after: Any, room: bool) -> bool:
        """A block was appended between `before` and `after`. True: send it
        now, from memory; False: it waits on disk for the cursor."""
        send = room and self.cursor == before and not self._memory
        self.end = after
        if send:
            self.cursor = after
        return send

    def unspooled(self, block: Any, room: bool) -> bool:
        """A block the spool could not take (it failed, or there is none).
        True: send it now; False: it is kept here, in order."""
        self.spooling = False
        if room and self.caught_up:
            return True
        self._memory.append(block)
        return False

    def replayed(self, after: Any) -> None:
        """Records up to `after` were read back from the spool and sent (or,
        at the end of the spool, there was nothing more to read)."""
        self.cursor = max(self.cursor, after)

    def disk_unreadable(self) -> None:
        """The spool cannot be read back: what waits there stays for a later run."""
        self.cursor = self.end

    # -- decisions -----------------------------------------------------------------

    @property
    def on_disk(self) -> bool:
        """Records wait in the spool for the cursor."""
        return self.cursor < self.end

    @property
    def caught_up(self) -> bool:
        return not self.on_disk and not self._memory

    def next_from_memory(self) -> Any | None:
        """The oldest block kept in memory, once nothing waits on disk before it."""
        if self.on_disk or not self._memory:
            return None
        return self._memory.popleft()

    def may_read(self, spool_full: bool, room: bool) -> bool:
        """Whether to read the sources now. With the spool: until it is full,
        whatever downstream does. Without: only when the pipeline has room
        and nothing read waits."""
        if self.spooling:
            return not spool_full
        return room and self.caught_up
