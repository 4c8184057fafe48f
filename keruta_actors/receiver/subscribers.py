"""Live subscribers: clients that sent `subscribe` on `/ws/tasks/{taskId}`
and get the task's new records as they are stored.

Ingest hands every stored chunk to the `Hub`, which offers it to each of the
task's subscribers. Offering never waits and never sends: it filters the
records into the subscriber's queue, and a task per subscriber sends from
that queue at the pace the client reads. The queue holds at most `limit`
records; what does not fit is skipped, and the subscriber is told how many
with an `error` frame (code RATE_LIMIT_EXCEEDED, `skipped`: N) before the
records that follow. So a subscriber that reads slowly, or not at all, costs
ingest one filter pass per chunk and a bounded amount of memory.

A record the agent sends again after a reconnect is stored once but may be
offered twice; subscribers tell such repeats apart by `id`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

from aiohttp import web

from keruta_actors.receiver.protocol import Options
from keruta_actors.records import rfc3339

QUEUE_LIMIT = 10_000  # records waiting for one subscriber
BATCH_LIMIT = 500  # records to a `logs` frame, for subscribers that asked for batches
KEEPALIVE = 30.0  # seconds of silence before an application-level ping
GATHER = 1.0  # seconds a subscriber without `realtime` waits between sends

log = logging.getLogger(__name__)
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Subscriber:
    def __init__(self, ws: web.WebSocketResponse, task_id: str, options: Options, limit: int = QUEUE_LIMIT) -> None:
        self.task_id = task_id
        self._ws = ws
        self._options = options
        self._sources = frozenset(options.sources)
        self._levels = frozenset(options.levels)
        self._limit = limit
        self._queue: deque[dict[str, Any]] = deque()
        self._skipped = 0
        self._ready = asyncio.Event()

    def offer(self, records: list[dict[str, Any]]) -> None:
        if self._sources or self._levels:
            records = [r for r in records if self._wants(r)]
        room = self._limit - len(self._queue)
        if len(records) > room:
            self._skipped += len(records) - room
            records = records[:room]
        if records:
            self._queue.extend(records)
            self._ready.set()
        elif self._skipped:
            self._ready.set()

    def _wants(self, record: dict[str, Any]) -> bool:
        return (not self._sources or record["source"] in self._sources) and (
            not self._levels or record["level"] in self._levels
        )

    async def run(self) -> None:
        """Send what is queued, as the client takes it, until cancelled or
        the client goes away."""
        try:
            while not self._ws.closed:
                try:
                    await asyncio.wait_for(self._ready.wait(), KEEPALIVE)
                except asyncio.TimeoutError:
                    await self._ws.send_json({"type": "ping", "timestamp": rfc3339(time.time())})
                    continue
                if not self._options.realtime:
                    await asyncio.sleep(GATHER)
                self._ready.clear()
                await self._send_queued()
        except ConnectionError:
            log.debug("subscriber of task %s went away", self.task_id)

    async def _send_queued(self) -> None:
        while self._queue or self._skipped:
            if self._skipped:
                skipped, self._skipped = self._skipped, 0
                await self._ws.send_str(_encode(_skipped_frame(skipped)))
            if self._options.batch:
                batch = [self._queue.popleft() for _ in range(min(BATCH_LIMIT, len(self._queue)))]
                if batch:
                    await self._ws.send_str(_encode({"type": "logs", "taskId": self.task_id, "logs": batch}))
            elif self._queue:
                await self._ws.send_str(_encode({**self._queue.popleft(), "type": "log"}))


def _skipped_frame(count: int) -> dict[str, Any]:
    return {
        "type": "error",
        "code": "RATE_LIMIT_EXCEEDED",
        "message": f"{count} records skipped: this subscriber reads slower than they arrive",
        "skipped": count,
        "timestamp": rfc3339(time.time()),
    }


class Hub:
    """The subscribers of every task."""

    def __init__(self) -> None:
        self._by_task: dict[str, set[Subscriber]] = {}

    def add(self, subscriber: Subscriber) -> None:
        self._by_task.setdefault(subscriber.task_id, set()).add(subscriber)

    def remove(self, subscriber: Subscriber) -> None:
        subscribers = self._by_task.get(subscriber.task_id, set())
        subscribers.discard(subscriber)
        if not subscribers:
            self._by_task.pop(subscriber.task_id, None)

    def publish(self, task_id: str, records: list[dict[str, Any]]) -> None:
        """Records of `task_id` were stored (call on the event loop's thread)."""
        for subscriber in self._by_task.get(task_id, ()):
            subscriber.offer(records)
