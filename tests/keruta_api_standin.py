"""A stand-in for the keruta API as deployed (kigawa-net/keruta-api at
3f88163), written from its source, quirks included, for the compatibility
tests. The reference receiver stays the SPEC's server; this is the real one.

What it keeps from the source:
- `TaskLogController.createLog`: `POST /api/v1/tasks/{taskId}/logs` takes
  `CreateTaskLogRequest(level, message, source = "task", metadata = {})`,
  ignores unknown fields, answers 201 with the stored log; the level must be
  a `LogLevel` (DEBUG, INFO, WARN, ERROR, FATAL) in any case, anything else
  gets 400 with an empty body. The server stamps its own time and its own id.
- `TaskController.getTaskScript`: `GET /api/v1/tasks/{id}/script`, 404 when
  the task has no script.
- `HealthController`: `GET /api/v1/health`.
- `GlobalExceptionHandler`: any other path, the log WebSocket and
  `/logs/batch` included, ends in Spring's NoHandlerFoundException and the
  catch-all handler: 500 with an `{"error": {...}, "meta": {...}}` body.
- No authentication (`permitAll`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import datetime

from aiohttp import web

LOG_LEVELS = frozenset({"DEBUG", "INFO", "WARN", "ERROR", "FATAL"})


class KerutaApiStandIn:
    def __init__(self) -> None:
        self.logs: list[dict] = []  # as stored, in arrival order
        self.stored_at: list[float] = []  # monotonic time each log was stored
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.scripts: dict[str, dict] = {}  # task id -> the script object served
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._catch_all])
        app.router.add_post("/api/v1/tasks/{taskId}/logs", self._create_log)
        app.router.add_get("/api/v1/tasks/{taskId}/script", self._script)
        app.router.add_get("/api/v1/health", self._health)
        return app

    def messages(self, task_id: str) -> list[str]:
        with self._lock:
            return [log["message"] for log in self.logs if log["taskId"] == task_id]

    def logs_of(self, task_id: str) -> list[dict]:
        with self._lock:
            return [log for log in self.logs if log["taskId"] == task_id]

    @web.middleware
    async def _catch_all(self, request: web.Request, handler):
        self.requests.append((request.method, request.path))
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _error(500, "INTERNAL_SERVER_ERROR", f"No static resource {request.path.lstrip('/')}.")
        except web.HTTPMethodNotAllowed:
            return _error(500, "INTERNAL_SERVER_ERROR", f"Request method '{request.method}' is not supported")

    async def _create_log(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
            level, message = body["level"], body["message"]
            if not isinstance(level, str) or not isinstance(message, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _error(500, "INTERNAL_SERVER_ERROR", "JSON parse error")
        if level.upper() not in LOG_LEVELS:
            return web.Response(status=400)  # ResponseEntity.badRequest().body(null)
        log = {
            "id": str(uuid.uuid4()),
            "taskId": request.match_info["taskId"],
            "sessionId": "",
            "level": level.upper(),
            "source": body.get("source") or "task",
            "message": message,
            "timestamp": datetime.now().isoformat(),
            "metadata": body.get("metadata") or {},
        }
        with self._lock:
            self.logs.append(log)
            self.stored_at.append(time.monotonic())
        return web.json_response(log, status=201)

    async def _script(self, request: web.Request) -> web.Response:
        task_id = request.match_info["taskId"]
        script = self.scripts.get(task_id)
        if script is None:
            return web.Response(status=404)
        return web.json_response({"success": True, "taskId": task_id, "script": script})

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "UP", "timestamp": datetime.now().isoformat(), "message": "Keruta API is running"})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "status": status},
         "meta": {"timestamp": datetime.now().astimezone().isoformat(), "version": "1.0.0"}},
        status=status,
    )


class StandInThread:
    """The stand-in served on 127.0.0.1 and a free port from a daemon thread.

        with StandInThread(KerutaApiStandIn()) as api:
            env["KERUTA_API_URL"] = api.base_url
    """

    def __init__(self, stand_in: KerutaApiStandIn) -> None:
        self.stand_in = stand_in
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(stand_in.app(), handle_signals=False)
        self._thread = threading.Thread(target=self._loop.run_forever, name="keruta-api-stand-in", daemon=True)

    @property
    def base_url(self) -> str:
        """What keruta puts in a task pod's KERUTA_API_URL: the host only."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "StandInThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
