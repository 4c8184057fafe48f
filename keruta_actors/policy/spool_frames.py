"""The spool's on-disk frames, encoded and decoded without I/O.

A segment file is a sequence of records frames; `marks.log` is a sequence of
mark frames. Every frame is checksummed, and a records frame's header has its
own checksum, so a frame whose payload is damaged is skipped by its (trusted)
length, and damaged bytes are found again by their magic.

Records frame: one RecordBlock of one stream (namespace and source), in
lineNumber order. Integers little-endian; the two arrays in the machine's own
order (the spool never leaves the machine that wrote it).

    offset size
    0      4    magic b"\\x89KSR"
    4      1    source code (records.SOURCES)
    5      1    0 (reserved)
    6      2    namespace length, UTF-8 bytes
    8      4    count: records in the frame
    12     8    first lineNumber
    20     8    last lineNumber
    28     4    metadata length: JSON {"shared": [...], "extras": [[i, {...}], ...]}
    32     4    text length, UTF-8 bytes (messages joined by "\\n")
    36     4    CRC-32 of the payload
    40     4    CRC-32 of bytes 0..39
    44          payload: namespace, lineNumbers (int64 x count),
                timestamps (float64 x count), level ranks (count bytes),
                metadata, text

Mark frame: "every line of the stream up to lineNumber is confirmed".

    0 4 magic b"\\x89KSM" | 4 1 source code | 5 1 0 | 6 2 namespace length
    8 8 lineNumber | 16 4 CRC-32 of bytes 0..15 and the namespace | 20 namespace
"""

from __future__ import annotations

import json
import struct
import zlib
from array import array
from dataclasses import dataclass
from keruta_actors.records import SOURCE_CODE, SOURCES, RecordBlock

RECORDS_MAGIC = b"\x89KSR"
MARK_MAGIC = b"\x89KSM"
_RECORDS = struct.Struct("<4sBBHIqqIIII")
_MARK = struct.Struct("<4sBBHqI")
HEADER_SIZE = _RECORDS.size
_crc = zlib.crc32


@dataclass(frozen=True, slots=True)
class Stream:
    """One numbered stream of records: ids are `{namespace}-{source}-{lineNumber}`."""

    namespace: str
    source: str  # stdout, stderr or agent


@dataclass(frozen=True, slots=True)
class Header:
    """A records frame's header, checksum verified."""

    source: int
    namespace_size: int
    count: int
    first: int
    last: int
    metadata_size: int
    text_size: int
    payload_crc: int

    @property
    def payload_size(self) -> int:
        return self.namespace_size + 17 * self.count + self.metadata_size + self.text_size

    @property
    def frame_size(self) -> int:
        return HEADER_SIZE + self.payload_size


@dataclass(frozen=True, slots=True)
class Frame:
    """Where a whole, verified records frame lies in a segment."""

    offset: int
    header: Header
    stream: Stream


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes [offset, offset + size) of a file hold no valid frame."""

    offset: int
    size: int


class MetadataCodec:
    """The metadata part of a frame. Consecutive blocks of a stream share
    their metadata, so the last one is remembered both ways and JSON runs
    once per change, not once per frame."""

    def __init__(self) -> None:
        self._encoded: tuple[tuple, tuple, bytes] | None = None
        self._decoded: tuple[bytes, tuple, tuple] | None = None

    def encode(self, shared: tuple, extras: tuple) -> bytes:
        last = self._encoded
        if last is not None and last[0] is shared and last[1] is extras:
            return last[2]
        data = json.dumps({"shared": shared, "extras": extras}, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8", "surrogatepass")
        self._encoded = (shared, extras, data)
        return data

    def decode(self, data: bytes) -> tuple[tuple, tuple]:
        last = self._decoded
        if last is not None and last[0] == data:
            return last[1], last[2]
        loaded = json.loads(data)
        shared = tuple(loaded["shared"])
        extras = tuple((index, extra) for index, extra in loaded["extras"])
        self._decoded = (data, shared, extras)
        return shared, extras


def encode_records(block: RecordBlock, codec: MetadataCodec) -> tuple[list, int]:
    """(buffers to write in order, their total size) for a non-empty block of
    one stream. The arrays go out as they are: no copy, no per-record work."""
    count = len(block)
    if not count == len(block.line_numbers) == len(block.timestamps) == len(block.levels):
        raise ValueError(f"{block!r} has columns of different lengths")  # its frame could not be read back
    namespace = block.run_id.encode("utf-8", "surrogatepass")
    metadata = codec.encode(block.shared, block.extras)
    text = block.text.encode("utf-8", "surrogatepass")
    payload = [namespace, block.line_numbers, block.timestamps, block.levels, metadata, text]
    payload_crc = 0
    for part in payload:
        payload_crc = _crc(part, payload_crc)
    fields = (RECORDS_MAGIC, block.sources[0], 0, len(namespace), count, block.line_numbers[0],
              block.line_numbers[-1], len(metadata), len(text), payload_crc)
    head = _RECORDS.pack(*fields, 0)
    head = _RECORDS.pack(*fields, _crc(head[:40]))
    return [head, *payload], HEADER_SIZE + sum(map(_nbytes, payload))


def _nbytes(part) -> int:
    return len(part) * part.itemsize if isinstance(part, array) else len(part)


def parse_header(data) -> Header | None:
    """The header at the start of `data` (at least HEADER_SIZE bytes), or None
    if it is not one."""
    if len(data) < HEADER_SIZE or bytes(data[:4]) != RECORDS_MAGIC:
        return None
    fields = _RECORDS.unpack_from(data)
    if fields[-1] != _crc(data[:40]) or fields[1] >= len(SOURCES):
        return None
    return Header(*fields[1:2], *fields[3:-1])


def stream_of(header: Header, payload) -> Stream:
    namespace = bytes(payload[: header.namespace_size]).decode("utf-8", "surrogatepass")
    return Stream(namespace, SOURCES[header.source])


def decode_records(header: Header, payload, codec: MetadataCodec) -> RecordBlock | None:
    """The block in a frame's payload, or None if the payload is damaged."""
    if _crc(payload) != header.payload_crc:
        return None
    view = memoryview(payload)
    at = header.namespace_size
    count = header.count
    line_numbers, timestamps = array("q"), array("d")
    line_numbers.frombytes(view[at : at + 8 * count])
    at += 8 * count
    timestamps.frombytes(view[at : at + 8 * count])
    at += 8 * count
    levels = bytes(view[at : at + count])
    at += count
    shared, extras = codec.decode(bytes(view[at : at + header.metadata_size]))
    at += header.metadata_size
    return RecordBlock(
        run_id=stream_of(header, view).namespace,
        sources=bytes((header.source,)) * count,
        line_numbers=line_numbers,
        timestamps=timestamps,
        levels=levels,
        text=bytes(view[at : at + header.text_size]).decode("utf-8", "surrogatepass"),
        shared=shared,
        extras=extras,
    )


def scan_records(data) -> tuple[list[Frame], list[Damage]]:
    """Every whole, verified frame in a segment's bytes, and the damaged
    stretches between and after them (a torn tail is damage that reaches the
    end)."""
    return _walk(data, RECORDS_MAGIC, _frame_at)


def _frame_at(data, at: int) -> tuple[Frame, int] | None:
    header = parse_header(data[at : at + HEADER_SIZE])
    end = at + header.frame_size if header is not None else 0
    if header is None or end > len(data):
        return None
    payload = data[at + HEADER_SIZE : end]
    if _crc(payload) != header.payload_crc:
        return None
    return Frame(at, header, stream_of(header, payload)), end


def _walk(data, magic: bytes, parse) -> tuple[list, list[Damage]]:
    """What `parse(data, at) -> (item, end) | None` finds frame after frame.
    After damage, the walk resumes at the next offset where a frame parses."""
    items: list = []
    damage: list[Damage] = []
    at, size = 0, len(data)
    while at < size:
        parsed = parse(data, at)
        if parsed is not None:
            item, at = parsed
            items.append(item)
            continue
        found = data.find(magic, at + 1)
        while found >= 0 and parse(data, found) is None:
            found = data.find(magic, found + 1)
        found = size if found < 0 else found
        damage.append(Damage(at, found - at))
        at = found
    return items, damage


def encode_mark(stream: Stream, line_number: int) -> bytes:
    namespace = stream.namespace.encode("utf-8", "surrogatepass")
    head = _MARK.pack(MARK_MAGIC, SOURCE_CODE[stream.source], 0, len(namespace), line_number, 0)[:16]
    return head + struct.pack("<I", _crc(namespace, _crc(head))) + namespace


def scan_marks(data: bytes) -> tuple[dict[Stream, int], list[Damage]]:
    """The highest confirmed lineNumber per stream in a marks log, and its
    damaged stretches."""
    marks: dict[Stream, int] = {}
    found, damage = _walk(data, MARK_MAGIC, _mark_at)
    for stream, line_number in found:
        marks[stream] = max(line_number, marks.get(stream, line_number))
    return marks, damage


def _mark_at(data: bytes, at: int) -> tuple[tuple[Stream, int], int] | None:
    if data[at : at + 4] != MARK_MAGIC or at + _MARK.size > len(data):
        return None
    _, source, _, size, line_number, crc = _MARK.unpack_from(data, at)
    end = at + _MARK.size + size
    namespace = data[at + _MARK.size : end]
    if end > len(data) or source >= len(SOURCES) or crc != _crc(namespace, _crc(data[at : at + 16])):
        return None
    return (Stream(namespace.decode("utf-8", "surrogatepass"), SOURCES[source]), line_number), end
