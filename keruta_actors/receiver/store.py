"""The receiver's log table in SQLite.

Every `insert` is one transaction, so a batch is either stored whole or not at
all and the receiver can ack it as a unit.
Duplicates are dropped by the record's `id`: the agent resends with the same
ids after a reconnect, and the second copy must change nothing.

WAL with `synchronous=NORMAL` keeps commits cheap (no fsync per commit) while a
crash of the receiver still cannot corrupt the file; readers such as tests and
the benchmark can count rows while the receiver writes.

The connection is shared between the event loop's thread and callers on other
threads (tests read through `ReceiverThread.store`), hence the lock. The REST
queries read through their own connection (queries.py), so a long query does
not hold up ingest.

The indexes serve the queries: pages in time order, whole or by source
(`logs_by_task_time`, which holds the source), and by level
(`logs_by_task_level`). Both end in the full sort key, so a page is read off
an index in order and a count never touches the table. `tasks` names every
task that has sent a record, so that a task whose logs were all deleted is
still known (an empty page, not TASK_NOT_FOUND).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from operator import itemgetter
from typing import Any, Iterable

from keruta_actors.receiver.queries import as_record

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
DROP INDEX IF EXISTS logs_by_task_source_line;
CREATE INDEX IF NOT EXISTS logs_by_task_time
    ON logs (task_id, timestamp, source, line_number);
CREATE INDEX IF NOT EXISTS logs_by_task_level
    ON logs (task_id, level, timestamp, source, line_number);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
"""

_SEEN = (
    "INSERT INTO tasks (task_id, first_seen, last_seen) VALUES (?, ?, ?)"
    " ON CONFLICT (task_id) DO UPDATE SET last_seen = excluded.last_seen"
)

_INSERT = (
    "INSERT OR IGNORE INTO logs (id, task_id, timestamp, source, level, message,"
    " line_number, metadata, received_at) VALUES "
)
_RETURNING = " RETURNING id"  # only the rows inserted: a duplicate by id is not
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

    def insert(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store validated LogMessage dicts in one transaction; return those
        that were new, in order (the rest were duplicates by id, of stored
        records or of one before them here). Only these are news to live
        subscribers: a resent batch must not reach them twice."""
        now = time.time()
        values = _values(records, now)
        step = _ROWS_PER_STATEMENT * _COLUMNS
        tasks = {record["taskId"] for record in records}
        inserted: set[str] = set()
        with self._lock:
            with self._conn:
                for start in range(0, len(values), step):
                    part = values[start : start + step]
                    rows = self._conn.execute(_insert_sql(len(part) // _COLUMNS) + _RETURNING, part)
                    inserted.update(record_id for (record_id,) in rows)
                self._conn.executemany(_SEEN, [(task, now, now) for task in tasks])
        new = []
        for record in records:
            if record["id"] in inserted:
                inserted.discard(record["id"])  # a repeat later in this batch is not new
                new.append(record)
        return new

    def delete(self, task_id: str, before: str | None) -> int:
        """Delete a task's records, or those stamped before `before` (a
        stored-form timestamp); return how many went. The task stays known."""
        sql = "DELETE FROM logs WHERE task_id = ?"
        params: tuple[str, ...] = (task_id,)
        if before is not None:
            sql, params = sql + " AND timestamp < ?", (task_id, before)
        with self._lock, self._conn:
            return self._conn.execute(sql, params).rowcount

    def prune(self, before: str) -> int:
        """Delete every record stamped before `before`, task by task (so each
        delete is a range of an index); forget tasks left empty."""
        deleted = 0
        with self._lock:
            tasks = [task for (task,) in self._conn.execute("SELECT task_id FROM tasks")]
        for task in tasks:
            deleted += self.delete(task, before)
        with self._lock, self._conn:
            self._conn.execute(
                "DELETE FROM tasks WHERE NOT EXISTS (SELECT 1 FROM logs WHERE logs.task_id = tasks.task_id)"
            )
        return deleted

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
        return [as_record(row) for row in rows]

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
