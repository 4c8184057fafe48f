"""Records: captured lines, as they travel between actors and onto the wire.

Between actors, records travel as a `RecordBlock`: a chunk's records column
by column (source and level codes as bytes, line numbers and timestamps as
arrays, the messages joined into one string). Every chunk is pickled at
every actor hop, and pickling columns is a few large copies: measured on a
4,096-record chunk, 0.02 µs per record against 2.5 µs per record for the same
records as tuples (the README's design section has the figures).

A single record, where one is needed (encoding, tests), is a plain tuple
whose field positions are given below: `rows()` yields them.

Metadata is one dict per source, shared by all its records (process id,
command, hostname, agent version), plus a sparse list of per-line keys
(`truncated`, `originalLength`, `partial`, `continuation`) for the few lines
that have them.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import repeat
from typing import Any, Iterable, Iterator

# The C string escaper json.dumps uses inside; called directly it skips the
# encoder's per-call set-up, which costs more than escaping a short line.
_escape = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring

ID, SOURCE, LINE_NUMBER, TIMESTAMP, LEVEL, MESSAGE, METADATA = range(7)

Record = tuple  # (id, source, lineNumber, timestamp, level, message, metadata)

SOURCES = ("stdout", "stderr", "agent")
SOURCE_CODE = {source: code for code, source in enumerate(SOURCES)}
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
LEVEL_RANK = {level: rank for rank, level in enumerate(LEVELS)}

def record_id(run_id: str, source: str, line_number: int) -> str:
    """The id the receiver deduplicates on: the same for every retry, reconnect
    and replay of the line, and distinct between runs of the agent."""
    return f"{run_id}-{source}-{line_number}"


def make_record(
    run_id: str,
    source: str,
    line_number: int,
    timestamp: float,
    level: str,
    message: str,
    metadata: dict[str, Any],
) -> Record:
    return (
        record_id(run_id, source, line_number),
        source,
        line_number,
        timestamp,
        level,
        message,
        metadata,
    )


@dataclass(frozen=True, slots=True, repr=False)
class RecordBlock:
    """Records column by column. A message never contains a newline (lines are
    split on it), so the messages are stored joined by newlines."""

    run_id: str
    sources: bytes  # a SOURCE_CODE per record
    line_numbers: array  # array("q")
    timestamps: array  # array("d"), seconds since the epoch, when read
    levels: bytes  # a LEVEL_RANK per record
    text: str  # the messages, joined by "\n"
    shared: tuple  # the metadata dict of each source, in SOURCES order
    extras: tuple = ()  # ((index, dict), ...) ascending: per-line metadata keys

    def __len__(self) -> int:
        return len(self.sources)

    def __repr__(self) -> str:
        return f"RecordBlock(n={len(self)})"

    __str__ = __repr__

    @classmethod
    def of_lines(
        cls,
        run_id: str,
        source: str,
        first_line_number: int,
        timestamp: float,
        levels: list[str],
        lines: list[tuple[str, dict | None]],
        shared: tuple,
    ) -> "RecordBlock":
        """Consecutive lines of one source, read at one moment."""
        n = len(lines)
        return cls(
            run_id=run_id,
            sources=bytes((SOURCE_CODE[source],)) * n,
            line_numbers=array("q", range(first_line_number, first_line_number + n)),
            timestamps=array("d", repeat(timestamp, n)),
            levels=bytes(LEVEL_RANK[level] for level in levels),
            text="\n".join(text for text, _ in lines),
            shared=shared,
            extras=tuple((index, extra) for index, (_, extra) in enumerate(lines) if extra),
        )

    @classmethod
    def of_rows(cls, run_id: str, rows: Iterable[Record], shared: tuple) -> "RecordBlock":
        """Records given one by one, e.g. the agent's own. Newlines in a
        message become spaces: the block's text is newline-joined. A row
        whose metadata is not its source's shared dict keeps it as per-line
        keys laid over the shared dict (as `rows()` gives them back)."""
        rows = list(rows)
        shared_by_source = {SOURCE_CODE[source]: metadata for source, metadata in zip(SOURCES, shared)}
        return cls(
            run_id=run_id,
            sources=bytes(SOURCE_CODE[row[SOURCE]] for row in rows),
            line_numbers=array("q", (row[LINE_NUMBER] for row in rows)),
            timestamps=array("d", (row[TIMESTAMP] for row in rows)),
            levels=bytes(LEVEL_RANK[row[LEVEL]] for row in rows),
            text="\n".join(row[MESSAGE].replace("\n", " ") for row in rows),
            shared=shared,
            extras=tuple(
                (index, row[METADATA])
                for index, row in enumerate(rows)
                if row[METADATA] is not shared_by_source[SOURCE_CODE[row[SOURCE]]]
            ),
        )

    def messages(self) -> list[str]:
        return self.text.split("\n") if self.sources else []

    def joins(self, other: "RecordBlock") -> bool:
        """True when `other` may be concatenated onto this block."""
        return self.run_id == other.run_id and self.shared == other.shared

    def same_stream(self, other: "RecordBlock") -> bool:
        """True when `other` may join this block and continues its stream
        (the same source): the pipeline keeps every chunk and batch to one
        stream, so what is delivered, filtered or spooled is counted per
        stream from a block's length alone."""
        return self.joins(other) and (not self.sources or not other.sources or self.sources[0] == other.sources[0])

    @property
    def stream(self) -> tuple[str, str]:
        """(namespace, source) of a block of one stream (the first record's)."""
        return self.run_id, SOURCES[self.sources[0]]

    @classmethod
    def concat(cls, blocks: list["RecordBlock"]) -> "RecordBlock":
        """One block of `blocks` in order; all must join the first."""
        if len(blocks) == 1:
            return blocks[0]
        first = blocks[0]
        extras: list = []
        offset = 0
        for block in blocks:
            extras.extend((offset + index, extra) for index, extra in block.extras)
            offset += len(block)
        return cls(
            run_id=first.run_id,
            sources=b"".join(block.sources for block in blocks),
            line_numbers=array("q", b"".join(block.line_numbers.tobytes() for block in blocks)),
            timestamps=array("d", b"".join(block.timestamps.tobytes() for block in blocks)),
            levels=b"".join(block.levels for block in blocks),
            text="\n".join(block.text for block in blocks if block.sources),
            shared=first.shared,
            extras=tuple(extras),
        )

    def span(self, start: int, stop: int, messages: list[str] | None = None) -> "RecordBlock":
        """Records [start, stop) as a block of their own. When taking many
        spans of one block, pass its `messages()` so the text is split once."""
        if start == 0 and stop >= len(self):
            return self
        if messages is None:
            messages = self.messages()
        return self._replace_rows(
            sources=self.sources[start:stop],
            line_numbers=self.line_numbers[start:stop],
            timestamps=self.timestamps[start:stop],
            levels=self.levels[start:stop],
            text="\n".join(messages[start:stop]),
            extras=tuple((index - start, extra) for index, extra in self.extras if start <= index < stop),
        )

    def cut(self, sizes: Iterable[int]) -> list["RecordBlock"]:
        """Consecutive pieces of the given sizes, from the start."""
        messages = self.messages()
        pieces = []
        start = 0
        for size in sizes:
            pieces.append(self.span(start, start + size, messages))
            start += size
        return pieces

    def select(self, indices: list[int], replaced: dict[int, str] | None = None) -> "RecordBlock":
        """The records at `indices` (ascending), with some messages replaced."""
        if replaced is None and len(indices) == len(self):
            return self
        messages = self.messages()
        replaced = replaced or {}
        position = {index: new for new, index in enumerate(indices)}
        return self._replace_rows(
            sources=bytes(map(self.sources.__getitem__, indices)),
            line_numbers=array("q", map(self.line_numbers.__getitem__, indices)),
            timestamps=array("d", map(self.timestamps.__getitem__, indices)),
            levels=bytes(map(self.levels.__getitem__, indices)),
            text="\n".join(replaced.get(index, messages[index]) for index in indices),
            extras=tuple((position[index], extra) for index, extra in self.extras if index in position),
        )

    def rows(self) -> Iterator[Record]:
        """Each record as a tuple, in order (see the field positions above)."""
        extras = dict(self.extras)
        run_id, shared = self.run_id, self.shared
        for index, (code, line_number, timestamp, rank, message) in enumerate(
            zip(self.sources, self.line_numbers, self.timestamps, self.levels, self.messages())
        ):
            source = SOURCES[code]
            metadata = shared[code]
            if index in extras:
                metadata = {**metadata, **extras[index]}
            yield (f"{run_id}-{source}-{line_number}", source, line_number, timestamp, LEVELS[rank], message, metadata)

    def _replace_rows(self, **columns) -> "RecordBlock":
        return RecordBlock(run_id=self.run_id, shared=self.shared, **columns)


def empty_block(run_id: str = "", shared: tuple = ({}, {}, {})) -> RecordBlock:
    return RecordBlock(run_id, b"", array("q"), array("d"), b"", "", shared)


def rfc3339(timestamp: float) -> str:
    """UTC, millisecond precision (truncated), `Z` suffix: `2026-11-29T01:02:03.456Z`."""
    second = int(timestamp)
    return f"{_second_text(second)}{_millisecond(timestamp, second)}Z"


def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")


def _millisecond(timestamp: float, second: int) -> str:
    return f"{int((timestamp - second) * 1000):03d}"


class LogMessageEncoder:
    """Encodes a block's records as LogMessage JSON texts, straight from its
    columns, several times faster than `json.dumps(to_log_message(...))`,
    which matters because every record is encoded once per send: all that a
    record does not own is computed once (the text of each timestamp, which
    one read shares, of each shared metadata dict, and the fixed parts around
    them), and only its line number and message are formatted per record.

    Produces the same JSON values as `json.dumps(to_log_message(record))`
    for each of `block.rows()` (tests/unit/test_records.py holds it to that).

    With `position_in_metadata`, `metadata` also carries the record's
    `lineNumber`, `timestamp` and `id`: the deployed keruta API keeps only
    level, message, source and metadata of what is posted to it.
    """

    def __init__(self, task_id: str, position_in_metadata: bool = False) -> None:
        self.task_json = _escape(task_id)
        self.position_in_metadata = position_in_metadata
        self._second = -1
        self._second_text = ""
        self._metadata: dict[int, tuple[dict, str]] = {}

    def encode_block(self, block: RecordBlock) -> list[str]:
        """Each record of `block`, in order, as LogMessage JSON text."""
        run = _escape(block.run_id)[1:-1]
        # '{"type":"log","id":"RUN-SOURCE-' and what follows the id's number, per source
        id_heads = [f'{{"type":"log","id":"{run}-{source}-' for source in SOURCES]
        id_tail = f'","taskId":{self.task_json},"timestamp":"'
        fields = {(code, rank): f'","source":"{SOURCES[code]}","level":"{LEVELS[rank]}","message":'
                  for code in set(block.sources) for rank in set(block.levels)}
        shared = [self._metadata_json(metadata) for metadata in block.shared]
        extras = dict(block.extras)
        timestamps: dict[float, str] = {}
        texts = []
        for index, (code, number, timestamp, rank, message) in enumerate(
            zip(block.sources, block.line_numbers, block.timestamps, block.levels, block.messages())
        ):
            when = timestamps.get(timestamp)
            if when is None:
                when = timestamps[timestamp] = self._timestamp(timestamp)
            metadata = shared[code] if index not in extras else self._metadata_json(
                {**block.shared[code], **extras[index]})
            if self.position_in_metadata:
                inner = metadata[1:-1]
                metadata = (f'{{{inner}{"," if inner else ""}"lineNumber":{number},"timestamp":"{when}",'
                            f'"id":"{run}-{SOURCES[code]}-{number}"}}')
            texts.append(f'{id_heads[code]}{number}{id_tail}{when}{fields[code, rank]}{_escape(message)},'
                         f'"lineNumber":{number},"metadata":{metadata}}}')
        return texts

    def _timestamp(self, timestamp: float) -> str:
        second = int(timestamp)
        if second != self._second:
            self._second = second
            self._second_text = _second_text(second)
        return f"{self._second_text}{_millisecond(timestamp, second)}Z"

    def _metadata_json(self, metadata: dict) -> str:
        cached = self._metadata.get(id(metadata))
        # the dict itself is kept in the cache, so its id cannot be reused
        if cached is not None and cached[0] is metadata:
            return cached[1]
        text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
        if len(self._metadata) >= 64:  # per-line metadata (truncated, partial) is rare
            self._metadata.clear()
        self._metadata[id(metadata)] = (metadata, text)
        return text


def to_log_message(record: Record, task_id: str) -> dict[str, Any]:
    """The SPEC §4 LogMessage object for one record."""
    return {
        "type": "log",
        "id": record[ID],
        "taskId": task_id,
        "timestamp": rfc3339(record[TIMESTAMP]),
        "source": record[SOURCE],
        "level": record[LEVEL],
        "message": record[MESSAGE],
        "lineNumber": record[LINE_NUMBER],
        "metadata": record[METADATA],
    }
