"""The record: one captured line, as it travels between actors and onto the wire.

Inside the agent a record is a plain tuple, not a dataclass: a chunk of 1,000
tuples pickles in ~0.5 ms, the same chunk of frozen dataclasses in ~6 ms (see
the README's design section), and every chunk is pickled once per actor hop.
The field positions below are the record's whole definition; build records
only through `make_record` and read them only through these indices.

`metadata` is a dict shared by every record of one source (process id,
command, hostname, agent version) unless the line needs its own keys
(`truncated`, `originalLength`, `partial`): pickle then writes the shared dict
once per chunk, however many records refer to it.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

# The C string escaper json.dumps uses inside; called directly it skips the
# encoder's per-call set-up, which costs more than escaping a short line.
_escape = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring

ID, SOURCE, LINE_NUMBER, TIMESTAMP, LEVEL, MESSAGE, METADATA = range(7)

Record = tuple  # (id, source, lineNumber, timestamp, level, message, metadata)

SOURCES = ("stdout", "stderr", "agent")
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


def with_message(record: Record, message: str) -> Record:
    """The same record with its text replaced (used by redaction)."""
    return record[:MESSAGE] + (message,) + record[MESSAGE + 1 :]


def rfc3339(timestamp: float) -> str:
    """UTC, millisecond precision (truncated), `Z` suffix: `2026-11-29T01:02:03.456Z`."""
    second = int(timestamp)
    return f"{_second_text(second)}{_millisecond(timestamp, second)}Z"


def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")


def _millisecond(timestamp: float, second: int) -> str:
    return f"{int((timestamp - second) * 1000):03d}"


class LogMessageEncoder:
    """Encodes records as LogMessage JSON text, several times faster than
    `json.dumps(to_log_message(...))`, which matters because every record is
    encoded once per send: the second part of each timestamp and the JSON of
    each shared metadata dict are computed once and reused.

    Produces the same JSON value as `json.dumps(to_log_message(record))`
    (tests/unit/test_records.py holds it to that).
    """

    def __init__(self, task_id: str) -> None:
        self.task_json = _escape(task_id)
        self._second = -1
        self._second_text = ""
        self._metadata: dict[int, tuple[dict, str]] = {}

    def encode(self, record: Record) -> str:
        return (
            f'{{"type":"log","id":{_escape(record[ID])},"taskId":{self.task_json},'
            f'"timestamp":"{self._timestamp(record[TIMESTAMP])}","source":"{record[SOURCE]}",'
            f'"level":"{record[LEVEL]}","message":{_escape(record[MESSAGE])},'
            f'"lineNumber":{record[LINE_NUMBER]},"metadata":{self._metadata_json(record[METADATA])}}}'
        )

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
