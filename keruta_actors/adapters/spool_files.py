"""The spool's directory: its layout, its lock, and its recovery when opened.

One spool per task, `{stateDir}/{task}.spool/` (0700; every file 0600):

    lock           flock'ed by the agent using the spool (the kernel drops it when the agent dies)
    spool.json     {"version": 1, "runId": R, "watermarks": [[namespace, source, line], ...]},
                   replaced atomically
    marks.log      mark frames: confirmations since spool.json was written
    00000001.seg   records frames, numbered in append order (layout: policy/spool_frames.py)

Recovery reads the run id and the watermarks (spool.json's, raised by
marks.log's), folds them into a new spool.json, and checks every frame of
every segment. Damage (a torn write, or corruption) is reported once, as a
warning, and cut out of the file, so the next start does not meet it again.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import uuid
from dataclasses import dataclass
from fcntl import LOCK_EX, LOCK_NB, flock
from typing import Callable, Iterator

from keruta_actors.adapters.state_files import open_private, write_atomically
from keruta_actors.errors import SpoolError
from keruta_actors.policy.spool_frames import HEADER_SIZE, Damage, Header, Stream, parse_header, scan_marks, \
    scan_records

log = logging.getLogger("keruta_actors.adapters.spool")

SNAPSHOT, MARKS, LOCK = "spool.json", "marks.log", "lock"
SEGMENT_NAME = re.compile(r"(\d{8})\.seg")
READ_AHEAD = 1 << 16


@dataclass(frozen=True, slots=True)
class DamageReport:
    """Bytes of a spool file that held no valid frame, skipped."""

    path: str
    offset: int
    size: int

    def __str__(self) -> str:
        return f"{self.path}: {self.size} damaged bytes at offset {self.offset}"


def report(damage: DamageReport) -> None:
    log.warning("spool: skipped %s (a torn write or corruption); the records in them are lost", damage)


class Segment:
    """What the spool keeps in memory of one segment file."""

    __slots__ = ("number", "path", "size", "lasts")

    def __init__(self, directory: str, number: int) -> None:
        self.number = number
        self.path = os.path.join(directory, f"{number:08d}.seg")
        self.size = 0
        self.lasts: dict[Stream, int] = {}  # stream -> its last lineNumber here


@dataclass(frozen=True, slots=True)
class Recovered:
    run_id: str
    watermarks: dict[Stream, int]
    segments: dict[int, Segment]
    damage: tuple[DamageReport, ...]


def lock(directory: str) -> int:
    """The lock's descriptor; SpoolError if another agent holds it."""
    fd = open_private(os.path.join(directory, LOCK), os.O_RDWR)
    try:
        flock(fd, LOCK_EX | LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolError(f"spool: {directory} is in use by another agent", directory) from None
    return fd


def recover(directory: str) -> Recovered:
    damage: list[DamageReport] = []
    run_id, watermarks = _load_state(directory, damage)
    save_state(directory, run_id, watermarks)
    os.close(open_private(os.path.join(directory, MARKS), os.O_WRONLY | os.O_TRUNC))  # folded in
    for name in os.listdir(directory):  # temporary files of a rewrite a crash cut short
        if name.endswith(".tmp"):
            os.unlink(os.path.join(directory, name))
    segments = {}
    for name in sorted(os.listdir(directory)):
        match = SEGMENT_NAME.fullmatch(name)
        segment = match and _load_segment(directory, int(match.group(1)), damage)
        if segment:
            segments[segment.number] = segment
    for stretch in damage:
        report(stretch)
    return Recovered(run_id, watermarks, segments, tuple(damage))


def save_state(directory: str, run_id: str, watermarks: dict[Stream, int]) -> None:
    """spool.json with every watermark; marks.log may be emptied after it."""
    marks = sorted([stream.namespace, stream.source, line] for stream, line in watermarks.items())
    state = {"version": 1, "runId": run_id, "watermarks": marks}
    write_atomically(os.path.join(directory, SNAPSHOT), json.dumps(state).encode())


def _load_state(directory: str, damage: list[DamageReport]) -> tuple[str, dict[Stream, int]]:
    """A lost spool.json costs a new run id (new ids, never reused ones) and
    the watermarks (confirmed records may be sent again, under their ids)."""
    path = os.path.join(directory, SNAPSHOT)
    run_id, watermarks = "", {}
    try:
        with open(path, encoding="utf-8") as file:
            run_id, watermarks = _parse_state(json.load(file))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("spool: %s is unreadable (%s); confirmed records may be sent again", path, error)
    marks_path = os.path.join(directory, MARKS)
    try:
        with open(marks_path, "rb") as file:
            marks, stretches = scan_marks(file.read())
    except FileNotFoundError:
        marks, stretches = {}, []
    damage.extend(DamageReport(marks_path, stretch.offset, stretch.size) for stretch in stretches)
    for stream, line_number in marks.items():
        watermarks[stream] = max(line_number, watermarks.get(stream, 0))
    return run_id or uuid.uuid4().hex[:12], watermarks


def _parse_state(state: dict) -> tuple[str, dict[Stream, int]]:
    if state.get("version") != 1:
        raise ValueError(f"unknown version {state.get('version')!r}")
    watermarks = {Stream(str(namespace), str(source)): int(line) for namespace, source, line in state["watermarks"]}
    return str(state["runId"]), watermarks


def _load_segment(directory: str, number: int, damage: list[DamageReport]) -> Segment | None:
    """The segment's frames, checked; damage noted and cut out."""
    segment = Segment(directory, number)
    with open(segment.path, "rb") as file:
        if os.fstat(file.fileno()).st_size == 0:
            os.unlink(segment.path)
            return None
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            frames, stretches = scan_records(data)
            if stretches:
                damage.extend(DamageReport(segment.path, stretch.offset, stretch.size) for stretch in stretches)
                _repair(segment.path, data, frames, stretches)
    for frame in frames:
        segment.size += frame.header.frame_size
        segment.lasts[frame.stream] = frame.header.last
    return segment if frames else None


def _repair(path: str, data, frames: list, damage: list[Damage]) -> None:
    """Leave only the valid frames: cut a damaged tail off, or rewrite the
    file around damage in the middle; a file with no valid frame goes."""
    if not frames:
        os.unlink(path)
    elif len(damage) == 1 and damage[0].offset + damage[0].size == len(data):
        os.truncate(path, damage[0].offset)
    else:
        write_atomically(path, b"".join(data[f.offset : f.offset + f.header.frame_size] for f in frames))


def segment_frames(segment: Segment, offset: int,
                   on_damage: Callable[[DamageReport], None]) -> Iterator[tuple[int, Header, memoryview]]:
    """(offset, header, frame bytes) from `offset` to the segment's end, as
    far as it is known when each frame is read; read ahead in large pieces,
    as a frame is often small."""
    fd = os.open(segment.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        base, buffer = offset, b""
        while offset < segment.size:
            if offset + HEADER_SIZE > base + len(buffer):
                base, buffer = offset, os.pread(fd, READ_AHEAD, offset)
            header = parse_header(buffer[offset - base : offset - base + HEADER_SIZE])
            if header is None:  # changed on disk since it was written or checked
                on_damage(DamageReport(segment.path, offset, segment.size - offset))
                return
            end = offset + header.frame_size
            if end > base + len(buffer):
                base, buffer = offset, os.pread(fd, max(READ_AHEAD, header.frame_size), offset)
            yield offset, header, memoryview(buffer)[offset - base : end - base]
            offset = end
    finally:
        os.close(fd)
