"""What the REST endpoints read: pages, counts, stats, exports, the task list.

A `LogReader` has its own SQLite connection and runs every query on its own
worker thread. SQLite lets go of the interpreter lock while it works, and WAL
lets a reader run beside the writer, so a query over a million records holds
up neither ingest on the event loop nor the other way round.

Every query orders by (timestamp, source, lineNumber), the key both indexes
end in (store.py): time order across sources, line order within each.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from keruta_actors.records import LEVELS, SOURCES

_COLUMNS = "id, task_id, timestamp, source, level, message, line_number, metadata"
_ORDER = " ORDER BY timestamp, source, line_number"
T = TypeVar("T")

# One stored row: the LogMessage fields in `_COLUMNS` order, metadata still JSON text.
Row = tuple[str, str, str, str, str, str, int, str]


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which of a task's records a query is about; empty tuples mean all."""

    task_id: str
    sources: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    start: str | None = None  # stored-form timestamps, both inclusive
    end: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        sql, params = "task_id = ?", [self.task_id]
        for column, values in (("source", self.sources), ("level", self.levels)):
            if values:
                sql += f" AND {column} IN ({', '.join('?' * len(values))})"
                params += values
        if self.start is not None:
            sql, params = sql + " AND timestamp >= ?", params + [self.start]
        if self.end is not None:
            sql, params = sql + " AND timestamp <= ?", params + [self.end]
        return sql, params


class LogReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keruta-reader")

    async def run(self, query: Callable[..., T], *args: Any) -> T:
        """`query(connection, *args)` on the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._call, query, args)

    def _call(self, query: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._conn is None:  # opened on the worker thread, the only one that uses it
            self._conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        return query(self._conn, *args)

    def close(self) -> None:
        def close_connection() -> None:
            if self._conn is not None:
                self._conn.close()

        self._worker.submit(close_connection).result()
        self._worker.shutdown()


def fields(row: Row) -> dict[str, Any]:
    """A stored row's LogMessage fields but `metadata`, in the API's order."""
    id_, task, timestamp, source, level, message, line_number, _metadata = row
    return {
        "id": id_,
        "taskId": task,
        "timestamp": timestamp,
        "source": source,
        "level": level,
        "message": message,
        "lineNumber": line_number,
    }


def as_record(row: Row) -> dict[str, Any]:
    """A stored row as a LogMessage (without `type`)."""
    return fields(row) | {"metadata": json.loads(row[7])}


def probe(conn: sqlite3.Connection) -> None:
    """Raises unless both tables can be read."""
    conn.execute("SELECT 1 FROM logs LIMIT 1").fetchall()
    conn.execute("SELECT 1 FROM tasks LIMIT 1").fetchall()


def known(conn: sqlite3.Connection, task_id: str) -> bool:
    found = conn.execute("SELECT 1 FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
    return found is not None


def page(conn: sqlite3.Connection, where: LogFilter, number: int, size: int) -> tuple[list[Row], int]:
    """One page of records and how many match in all."""
    sql, params = where.where()
    (total,) = conn.execute(f"SELECT COUNT(*) FROM logs WHERE {sql}", params).fetchone()
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM logs WHERE {sql}{_ORDER} LIMIT ? OFFSET ?", params + [size, number * size]
    ).fetchall()
    return rows, total


def chunk(conn: sqlite3.Connection, where: LogFilter, after: Row | None, size: int) -> list[Row]:
    """Up to `size` records that come after the row `after` (from the
    start if None). Picking up from the last row, instead of an OFFSET,
    keeps every chunk of an export as cheap as the first."""
    sql, params = where.where()
    if after is not None:
        sql += " AND (timestamp, source, line_number) > (?, ?, ?)"
        params += [after[2], after[3], after[6]]
    return conn.execute(f"SELECT {_COLUMNS} FROM logs WHERE {sql}{_ORDER} LIMIT ?", params + [size]).fetchall()


def stats(conn: sqlite3.Connection, task_id: str) -> dict[str, Any]:
    by_source = dict.fromkeys(SOURCES, 0) | dict(
        conn.execute("SELECT source, COUNT(*) FROM logs WHERE task_id = ? GROUP BY source", (task_id,))
    )
    by_level = dict.fromkeys(LEVELS, 0) | dict(
        conn.execute("SELECT level, COUNT(*) FROM logs WHERE task_id = ? GROUP BY level", (task_id,))
    )
    # Two queries: SQLite reads a lone MIN or MAX straight off the index.
    (start,) = conn.execute("SELECT MIN(timestamp) FROM logs WHERE task_id = ?", (task_id,)).fetchone()
    (end,) = conn.execute("SELECT MAX(timestamp) FROM logs WHERE task_id = ?", (task_id,)).fetchone()
    return {
        "taskId": task_id,
        "totalLogs": sum(by_source.values()),
        "logCounts": by_source,
        "levelCounts": by_level,
        "timeRange": {"start": start, "end": end},
    }


def tasks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every known task, the most recently active first."""
    rows = conn.execute(
        "SELECT task_id, last_seen, (SELECT COUNT(*) FROM logs WHERE logs.task_id = tasks.task_id)"
        " FROM tasks ORDER BY last_seen DESC"
    )
    return [{"taskId": task, "lastSeen": last_seen, "totalLogs": total} for task, last_seen, total in rows]
