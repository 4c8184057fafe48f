"""`GET /api/v1/tasks/{taskId}/logs`: a task's records, one Spring-style page
at a time, filtered by `source`, `level`, `from` and `to`."""

from __future__ import annotations

from aiohttp import web

from keruta_actors.receiver import queries
from keruta_actors.receiver.queries import LogReader
from keruta_actors.receiver.rest import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, integer, log_filter, require_task


class LogsQueryEndpoint:
    def __init__(self, reader: LogReader) -> None:
        self._reader = reader

    async def get(self, request: web.Request) -> web.Response:
        task_id = request.match_info["taskId"]
        where = log_filter(task_id, request.query)
        number = integer(request.query, "page", 0, low=0)
        # A size over the cap is served at the cap, as Spring does, rather than refused.
        size = min(integer(request.query, "size", DEFAULT_PAGE_SIZE, low=1), MAX_PAGE_SIZE)
        await require_task(self._reader, task_id)
        rows, total = await self._reader.run(queries.page, where, number, size)
        pages = -(-total // size)
        return web.json_response(
            {
                "content": [queries.as_record(row) for row in rows],
                "totalElements": total,
                "totalPages": pages,
                "size": size,
                "number": number,
                "numberOfElements": len(rows),
                "first": number == 0,
                "last": number >= pages - 1,
                "empty": not rows,
            }
        )
