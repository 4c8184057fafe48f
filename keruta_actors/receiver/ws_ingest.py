"""The task WebSocket, `/ws/tasks/{taskId}`, on aiohttp: agents send records,
viewers subscribe to them (subscribers.py).

Decisions are `IngestSession`'s (protocol.py); this module only carries them
out. aiohttp's automatic pong is off: it would answer a ping inside
`receive()`, ahead of records the session still holds, so pings are handed to
the session and answered in order.

Every chunk stored is handed to the hub at once, so subscribers see records
as soon as they are stored. Stores run synchronously on the event loop's thread, so no reply sent after a
store can overtake it. (A writer thread would also fight the loop for the GIL
on every row: measured four times slower.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from keruta_actors.receiver.protocol import (
    DEFAULT_CAPABILITIES,
    Action,
    Close,
    IngestSession,
    Pong,
    Send,
    Store,
    Subscribe,
    Unsubscribe,
    credentials,
)
from keruta_actors.receiver.store import INSERT_ERRORS, LogStore
from keruta_actors.receiver.subscribers import Hub, Subscriber

MAX_FRAME = 16 * 1024 * 1024
AUTH_TIMEOUT = 10.0  # seconds a client may take to send its auth frame

log = logging.getLogger(__name__)


class IngestEndpoint:
    """The route handler plus the set of open sockets, closed on shutdown so
    that stopping the receiver does not wait for clients to hang up."""

    def __init__(
        self,
        store: LogStore,
        hub: Hub,
        token: str | None = None,
        capabilities: tuple[str, ...] | None = DEFAULT_CAPABILITIES,
    ) -> None:
        self._store = store
        self._hub = hub
        self._token = token
        self._capabilities = capabilities
        self._sockets: set[web.WebSocketResponse] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        session = IngestSession(request.match_info["taskId"], self._token, self._capabilities)
        self._sockets.add(ws)
        try:
            await _Connection(ws, self._store, self._hub, session).run(credentials(request.headers))
        finally:
            self._sockets.discard(ws)
        return ws

    async def close_all(self, _app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"receiver shutting down")


class _Connection:
    def __init__(self, ws: web.WebSocketResponse, store: LogStore, hub: Hub, session: IngestSession):
        self._ws = ws
        self._store = store
        self._hub = hub
        self._session = session
        self._subscriber: tuple[Subscriber, asyncio.Task[None]] | None = None
        self._idle_flush_scheduled = False
        self._replies: set[asyncio.Future[None]] = set()  # sent from the idle flush

    async def run(self, credentials: list[str]) -> None:
        session = self._session
        try:
            await self._perform(session.opened(credentials))
            while not session.closed and not self._ws.closed:
                timeout = None if session.authenticated else AUTH_TIMEOUT
                try:
                    msg = await self._ws.receive(timeout=timeout)
                except asyncio.TimeoutError:
                    await self._perform(session.auth_timed_out())
                    break
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    actions = session.received(msg.data)
                elif msg.type is WSMsgType.PING:
                    actions = session.pinged(msg.data)
                elif msg.type is WSMsgType.PONG:
                    continue
                else:  # closing, closed or a broken stream
                    break
                if actions:
                    await self._perform(actions)
                if session.holding and not self._idle_flush_scheduled:
                    self._idle_flush_scheduled = True
                    # Runs once this handler waits for input, i.e. once every
                    # frame already read from the socket has been handled.
                    asyncio.get_running_loop().call_soon(self._flush_when_idle)
        except ConnectionError:
            log.debug("ingest client for task %s went away", session.task_id)
        finally:
            # Whatever arrived is kept, even if the acks can no longer be sent.
            for action in session.idle():
                self._stored(action.records)
            self._unsubscribe()
            await asyncio.gather(*self._replies)

    async def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Send(frame):
                    await self._ws.send_json(frame)
                case Store(records, acks):
                    if not self._stored(records):
                        await self._perform(self._session.store_failed())
                        return  # nothing after a lost store may be sent
                    for batch_id in acks:
                        await self._ws.send_json(_ack(batch_id))
                case Pong(payload):
                    await self._ws.pong(payload)
                case Close(code):
                    await self._ws.close(code=code)
                case Subscribe(options):
                    self._unsubscribe()
                    subscriber = Subscriber(self._ws, self._session.task_id, options)
                    self._hub.add(subscriber)
                    self._subscriber = (subscriber, asyncio.ensure_future(subscriber.run()))
                case Unsubscribe():
                    self._unsubscribe()

    def _unsubscribe(self) -> None:
        if self._subscriber is not None:
            subscriber, sending = self._subscriber
            self._hub.remove(subscriber)
            sending.cancel()
            self._subscriber = None

    def _flush_when_idle(self) -> None:
        """Store synchronously, so nothing can overtake it; the replies that
        follow need the loop, so they go out as a task."""
        self._idle_flush_scheduled = False
        replies: list[Action] = []
        for store in self._session.idle():
            if self._stored(store.records):
                replies += [Send(_ack(batch_id)) for batch_id in store.acks]
            else:
                replies = self._session.store_failed()
        if replies:
            task = asyncio.ensure_future(self._perform_quietly(replies))
            self._replies.add(task)
            task.add_done_callback(self._replies.discard)

    async def _perform_quietly(self, actions: list[Action]) -> None:
        try:
            await self._perform(actions)
        except ConnectionError:
            log.debug("ingest client for task %s went away", self._session.task_id)

    def _stored(self, records: list[dict[str, Any]]) -> bool:
        try:
            stored = self._store.insert(records)
        except INSERT_ERRORS:
            log.exception("storing %d records failed", len(records))
            return False
        self._hub.publish(self._session.task_id, stored)
        return True


def _ack(batch_id: Any) -> dict[str, Any]:
    return {"type": "ack", "batchId": batch_id}
