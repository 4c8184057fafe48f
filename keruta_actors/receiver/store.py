"""The receiver's log table in SQLite.

Every `insert` is one transaction, so a batch is either stored whole or not at
all and the receiver can ack it as a unit.
Duplicates are dropped by the record's `id`: the agent resends with the same
ids after a reconnect, and the second copy must change nothing.

WAL with `synchronous=NORMAL` keeps commits cheap (no fsync per commit) while a
crash of the receiver still cannot corrupt the file; readers such as tests and
the benchmark can count rows while the receiver writes.

The connection is shared between the event loop's thread and callers on other
threads (tests read through `ReceiverThread.store`), hence the lock.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from operator import itemgetter
from typing import Any, Iterable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    source TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    line_number INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_task_source_line
    ON logs (task_id, source, line_number);
"""

_INSERT = (
    "INSERT OR IGNORE INTO logs (id, task_id, timestamp, source, level, message,"
    " line_number, metadata, received_at) VALUES "
)
_COLUMNS = 9
# Many rows to a statement, because SQLite then does the whole statement's work
# without returning to Python: ~30% faster than `executemany`. 100 rows keep
# within the 999 parameters older SQLite builds allow.
_ROWS_PER_STATEMENT = 100

# What `insert` raises for rows SQLite cannot take or a database that has gone
# wrong; the caller answers the client and keeps serving.
INSERT_ERRORS = (sqlite3.Error, ValueError, OverflowError)

_SELECT = (
    "SELECT id, task_id, timestamp, source, level, message, line_number, metadata"
    " FROM logs WHERE task_id = ? ORDER BY source, line_number"
)


class LogStore:
    """SQLite storage for LogMessage records (SPEC §4)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def insert(self, records: list[dict[str, Any]]) -> int:
        """Store validated LogMessage dicts in one transaction; return how
        many were new (the rest were duplicates by id)."""
        values = _values(records, time.time())
        step = _ROWS_PER_STATEMENT * _COLUMNS
        with self._lock:
            before = self._conn.total_changes
            with self._conn:
                for start in range(0, len(values), step):
                    part = values[start : start + step]
                    self._conn.execute(_insert_sql(len(part) // _COLUMNS), part)
            return self._conn.total_changes - before

    def count(self, task_id: str) -> int:
        with self._lock:
            (n,) = self._conn.execute(
                "SELECT COUNT(*) FROM logs WHERE task_id = ?", (task_id,)
            ).fetchone()
        return n

    def fetch(self, task_id: str) -> list[dict[str, Any]]:
        """A task's records in LogMessage shape (without `type`), ordered by
        source, then lineNumber."""
        with self._lock:
            rows = self._conn.execute(_SELECT, (task_id,)).fetchall()
        return [
            {
                "id": id_,
                "taskId": task,
                "timestamp": timestamp,
                "source": source,
                "level": level,
                "message": message,
                "lineNumber": line_number,
                "metadata": json.loads(metadata),
            }
            for id_, task, timestamp, source, level, message, line_number, metadata in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_columns = itemgetter("id", "taskId", "timestamp", "source", "level", "message", "lineNumber")


@functools.cache
def _insert_sql(rows: int) -> str:
    return _INSERT + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows)


def _values(records: Iterable[dict[str, Any]], received_at: float) -> list[Any]:
    """The records' column values, row after row, in one flat list."""
    # The agent gives every record of a source the same metadata, so runs of
    # equal dicts are the rule; comparing costs a fifth of encoding again.
    values: list[Any] = []
    last_metadata: dict[str, Any] = {}
    tail = ("{}", received_at)
    for record in records:
        metadata = record["metadata"]
        if not _same_json(metadata, last_metadata):
            last_metadata = metadata
            tail = (_encode(metadata), received_at)
        values += _columns(record)
        values += tail
    return values


def _same_json(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether `a` and `b` surely encode to the same JSON. `==` alone is not
    enough: it takes 1, 1.0 and true for one another. Dicts holding objects or
    arrays count as different, so they are encoded again: the agent's metadata
    is flat, and a deep check would not pay."""
    if a != b:
        return False
    for key, value in a.items():
        kind = type(value)
        if kind is not type(b[key]) or kind is dict or kind is list:
            return False
    return True
