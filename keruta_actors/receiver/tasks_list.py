"""`GET /api/v1/tasks`: every task the receiver knows, the most recently
active first, each with its record count. Not in the keruta API (where tasks
have their own endpoints); the viewer's task list reads it."""

from __future__ import annotations

from aiohttp import web

from keruta_actors.receiver import queries
from keruta_actors.receiver.queries import LogReader


class TasksListEndpoint:
    def __init__(self, reader: LogReader) -> None:
        self._reader = reader

    async def get(self, _request: web.Request) -> web.Response:
        return web.json_response(await self._reader.run(queries.tasks))
