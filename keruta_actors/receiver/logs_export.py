"""`GET /api/v1/tasks/{taskId}/logs/export?format=json|csv|txt[&from&to]`: a
task's records as a file to download.

The body streams: records are read a chunk at a time (each chunk picking up
after the last row of the one before) and written as they come, so memory
stays flat whatever the task's size, and a slow client holds only itself up.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Callable

from aiohttp import web

from keruta_actors.receiver import queries
from keruta_actors.receiver.queries import LogReader, Row
from keruta_actors.receiver.rest import log_filter, one_of, require_task

CHUNK = 5000  # rows read and written at a time
CSV_HEADER = ("id", "taskId", "timestamp", "source", "level", "lineNumber", "message", "metadata")
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")
_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r"})


def _json_item(row: Row) -> str:
    """A record as JSON; the stored metadata is already JSON text, so it is
    spliced in rather than decoded and encoded again."""
    head = _encode(queries.fields(row))
    return f'{head[:-1]},"metadata":{row[7]}}}'


def _json_rows(rows: list[Row], first: bool) -> str:
    return ("" if first else ",\n") + ",\n".join(map(_json_item, rows))


def _csv_rows(rows: list[Row], first: bool) -> str:
    out = io.StringIO()
    # Every text field quoted: a message may hold commas, quotes, line breaks
    # or other control characters, and a reader must get it back unchanged.
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    if first:
        writer.writerow(CSV_HEADER)
    writer.writerows((r[0], r[1], r[2], r[3], r[4], r[6], r[5], r[7]) for r in rows)
    return out.getvalue()


def _txt_rows(rows: list[Row], _first: bool) -> str:
    # One record a line: line breaks inside a message are written as \n and \r.
    return "".join(f"{r[2]} [{r[3]}] {r[4]:<5} {r[5].translate(_LINE_BREAKS)}\n" for r in rows)


# format: (Content-Type, body start, rows to text, body end)
_FORMATS: dict[str, tuple[str, str, Callable[[list[Row], bool], str], str]] = {
    "json": ("application/json", "[\n", _json_rows, "\n]\n"),
    "csv": ("text/csv", "", _csv_rows, ""),
    "txt": ("text/plain", "", _txt_rows, ""),
}


class LogsExportEndpoint:
    def __init__(self, reader: LogReader) -> None:
        self._reader = reader

    async def get(self, request: web.Request) -> web.StreamResponse:
        task_id = request.match_info["taskId"]
        where = log_filter(task_id, request.query)
        kind = one_of(request.query, "format", tuple(_FORMATS))
        await require_task(self._reader, task_id)
        content_type, start, encode, end = _FORMATS[kind]
        filename = f"{_UNSAFE_FILENAME.sub('_', task_id)}-logs.{kind}"
        response = web.StreamResponse(
            headers={
                "Content-Type": f"{content_type}; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{filename}"',
            }
        )
        # The first chunk is read before the answer starts, so that a
        # database error can still be a 500 rather than a cut-off file.
        rows = await self._reader.run(queries.chunk, where, None, CHUNK)
        await response.prepare(request)
        await response.write(start.encode())
        first = True
        while rows:
            await response.write(encode(rows, first).encode())
            first = False
            if len(rows) < CHUNK:
                break
            rows = await self._reader.run(queries.chunk, where, rows[-1], CHUNK)
        if kind == "csv" and first:
            await response.write(_csv_rows([], True).encode())
        await response.write(end.encode())
        await response.write_eof()
        return response
