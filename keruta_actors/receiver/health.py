"""`GET /health`, in the shape of the design's health check: an overall
status, when it was taken, and one check per part, each
{healthy, message, latency (seconds), error}. 200 when healthy, else 503."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from aiohttp import web

from keruta_actors.receiver import queries
from keruta_actors.receiver.queries import LogReader
from keruta_actors.records import rfc3339


class HealthEndpoint:
    def __init__(self, reader: LogReader) -> None:
        self._reader = reader

    async def get(self, _request: web.Request) -> web.Response:
        database = await self._database()
        healthy = database["healthy"]
        body = {
            "status": "healthy" if healthy else "unhealthy",
            "timestamp": rfc3339(time.time()),
            "checks": {"database": database},
        }
        return web.json_response(body, status=200 if healthy else 503)

    async def _database(self) -> dict[str, Any]:
        """Whether the tables can be read, and how long that took."""
        started = time.perf_counter()
        try:
            await self._reader.run(queries.probe)
        except sqlite3.Error as exc:
            return {"healthy": False, "message": "the database cannot be read", "error": str(exc)}
        latency = round(time.perf_counter() - started, 6)
        return {"healthy": True, "message": "the database answers", "latency": latency}
