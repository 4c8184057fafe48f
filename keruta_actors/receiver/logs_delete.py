"""`DELETE /api/v1/tasks/{taskId}/logs[?before=ISO]`: all of a task's records,
or those stamped before `before`. The task itself stays known."""

from __future__ import annotations

from aiohttp import web

from keruta_actors.receiver.queries import LogReader
from keruta_actors.receiver.rest import require_task, timestamp
from keruta_actors.receiver.store import LogStore


class LogsDeleteEndpoint:
    def __init__(self, store: LogStore, reader: LogReader) -> None:
        self._store = store
        self._reader = reader

    async def delete(self, request: web.Request) -> web.Response:
        task_id = request.match_info["taskId"]
        before = timestamp(request.query, "before")
        await require_task(self._reader, task_id)
        deleted = self._store.delete(task_id, before)
        scope = "" if before is None else f" stamped before {before}"
        return web.json_response({"deletedCount": deleted, "message": f"deleted {deleted} log records{scope}"})
