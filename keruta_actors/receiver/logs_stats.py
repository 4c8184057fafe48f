"""`GET /api/v1/tasks/{taskId}/logs/stats`: counts by source and by level,
and the time range the records span."""

from __future__ import annotations

from aiohttp import web

from keruta_actors.receiver import queries
from keruta_actors.receiver.queries import LogReader
from keruta_actors.receiver.rest import require_task


class LogsStatsEndpoint:
    def __init__(self, reader: LogReader) -> None:
        self._reader = reader

    async def get(self, request: web.Request) -> web.Response:
        task_id = request.match_info["taskId"]
        await require_task(self._reader, task_id)
        return web.json_response(await self._reader.run(queries.stats, task_id))
