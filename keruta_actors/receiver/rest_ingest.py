"""The REST ingest endpoints (SPEC §5 "REST fallback"), on aiohttp:

    POST /api/v1/tasks/{taskId}/logs         one LogRequest object
    POST /api/v1/tasks/{taskId}/logs/batch   a JSON array of them

The agent posts here when the WebSocket is down, so records are held to the
WebSocket's rules (protocol.py checks both) and land in the same table: a
record sent both ways with the same id is stored once. A LogRequest may leave
out `taskId` (the URL names the task), `metadata`, and the `id` and
`timestamp` the agent always sends; the receiver fills them in.

A body is stored in one transaction, whole or not at all, before the answer
goes out: 201 `{"stored": N, "duplicates": D}`, or `{"code", "message"}` with
400, 413 or 500. Authentication is the /api/v1 guard's (rest.py).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from aiohttp import web

from keruta_actors.receiver.protocol import parse_json, record_problem, records_problem
from keruta_actors.receiver.rest import refusal
from keruta_actors.receiver.store import INSERT_ERRORS, LogStore
from keruta_actors.receiver.subscribers import Hub
from keruta_actors.receiver.ws_ingest import MAX_FRAME
from keruta_actors.records import rfc3339

MAX_BODY = MAX_FRAME  # so a batch that fits one way in fits the other

log = logging.getLogger(__name__)


class RestIngestEndpoint:
    """The two POST handlers."""

    def __init__(self, store: LogStore, hub: Hub) -> None:
        self._store = store
        self._hub = hub

    async def post_log(self, request: web.Request) -> web.Response:
        return await self._ingest(request, batch=False)

    async def post_batch(self, request: web.Request) -> web.Response:
        return await self._ingest(request, batch=True)

    async def _ingest(self, request: web.Request, batch: bool) -> web.Response:
        try:
            text = (await request.read()).decode()
        except web.HTTPRequestEntityTooLarge:
            return refusal(413, "INVALID_LOG_FORMAT", f"body is over {MAX_BODY} bytes")
        except UnicodeDecodeError:
            return refusal(400, "INVALID_LOG_FORMAT", "body is not UTF-8 text")
        records, problem = _records(text, request.match_info["taskId"], batch)
        if problem:
            return refusal(400, "INVALID_LOG_FORMAT", problem)
        try:
            stored = self._store.insert(records)
        except INSERT_ERRORS:
            log.exception("storing %d records failed", len(records))
            return refusal(500, "DATABASE_ERROR", "storing records failed")
        self._hub.publish(request.match_info["taskId"], stored)
        return web.json_response({"stored": len(stored), "duplicates": len(records) - len(stored)}, status=201)


def _records(text: str, task_id: str, batch: bool) -> tuple[list[dict[str, Any]], str]:
    """The body's records, completed, and why the body is refused ("" if
    it is not)."""
    body, problem = parse_json(text, "body")
    if problem:
        return [], problem
    now = rfc3339(time.time())
    if not batch:
        record = _completed(body, task_id, now)
        return [record], record_problem(record, task_id)
    if type(body) is not list:
        return [], "body must be a JSON array"
    records = [_completed(item, task_id, now) for item in body]
    return records, records_problem(records, task_id, "body")


def _completed(record: Any, task_id: str, now: str) -> Any:
    """`record` with what a LogRequest may leave out filled in; anything but
    an object is returned as it is, for the check to refuse."""
    if type(record) is not dict:
        return record
    filled = {"taskId": task_id, "timestamp": now, "metadata": {}} | record
    if "id" not in filled:
        filled["id"] = uuid.uuid4().hex
    return filled

