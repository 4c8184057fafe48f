"""The write-ahead spool's decisions, without I/O (the files are
`keruta_actors.adapters.spool`'s): when to start a segment, which segments
may go, when to fsync, when the spool is full, and what `spool status` says.

A stream's watermark is the highest lineNumber up to which every record of
the stream is confirmed (delivered, or not shipped on purpose). A segment may
be deleted once, for every stream in it, its last record is at or below the
stream's watermark.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Mapping

from keruta_actors.policy.spool_frames import Stream

FSYNC_MODES = ("never", "interval", "always")


@dataclass(frozen=True, slots=True)
class Limits:
    max_size: int  # bytes on disk at which the reader stops reading
    segment_size: int  # a segment is closed before it grows past this

    def full(self, size: int) -> bool:
        return size >= self.max_size

    def would_exceed(self, size: int, more: int) -> bool:
        return size + more > self.max_size

    def rotate(self, active_size: int, frame_size: int) -> bool:
        """Start a new segment before this frame? A frame larger than a
        segment still goes whole into one."""
        return active_size > 0 and active_size + frame_size > self.segment_size


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """Every frame is written at once (a killed process loses nothing);
    fsync is for a machine crash: after every write ("always"), at most
    `interval` seconds after it ("interval"), or when the kernel chooses."""

    mode: str
    interval: float

    def __post_init__(self) -> None:
        if self.mode not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {FSYNC_MODES}, got {self.mode!r}")

    def after_write(self) -> bool:
        return self.mode == "always"

    def due(self, dirty: bool, clean_since: float, now: float) -> bool:
        """`clean_since`: when the spool was last synced or seen clean."""
        return self.mode == "interval" and dirty and now - clean_since >= self.interval


def deletable(segments: Mapping[int, Mapping[Stream, int]], watermarks: Mapping[Stream, int],
              active: int | None) -> list[int]:
    """Segments (by number; each maps its streams to their last lineNumber
    in it) whose every record is confirmed, except the `active` one."""
    return [
        number
        for number, lasts in segments.items()
        if number != active and all(last <= watermarks.get(stream, 0) for stream, last in lasts.items())
    ]


def unconfirmed_start(line_numbers, watermark: int) -> int:
    """The index of the first record above the watermark, in a block's
    ascending line numbers."""
    return bisect_right(line_numbers, watermark)


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """What the spool holds of one stream, for `spool status`."""

    stream: Stream
    records: int  # not yet confirmed
    bytes: int  # of the frames holding them
    first: int  # lowest lineNumber not yet confirmed (0: none)
    last: int  # highest lineNumber spooled or confirmed
    watermark: int


class StatusTally:
    """Adds up, frame by frame, what `StreamStatus` reports."""

    def __init__(self, watermarks: Mapping[Stream, int], lasts: Mapping[Stream, int]) -> None:
        self._watermarks = watermarks
        self._lasts = lasts
        self._held: dict[Stream, list[int]] = {}  # stream -> [records, bytes, first]

    def add(self, stream: Stream, records: int, size: int, first: int) -> None:
        """A frame holding `records` unconfirmed records, the first `first`."""
        held = self._held.setdefault(stream, [0, 0, first])
        held[0] += records
        held[1] += size

    def result(self) -> tuple[StreamStatus, ...]:
        streams = sorted({*self._lasts, *self._watermarks}, key=lambda s: (s.namespace, s.source))
        return tuple(
            StreamStatus(stream, *self._held.get(stream, (0, 0, 0)), self._lasts.get(stream, 0),
                         self._watermarks.get(stream, 0))
            for stream in streams
        )
