"""The WebSocket connection stage: one actor per connection attempt.

It connects when configured, sends the batches the batcher hands it, and
reports which ones the server confirmed. When the link fails it says so to
the supervisor (`LinkLost`) and does nothing more: the supervisor retires it
and, following the reconnect policy, starts a fresh one, to which the batcher
hands every batch still unconfirmed. Keeping one connection per actor means a
reconnect always starts from a clean state.

Connecting blocks (DNS, TCP, TLS, the handshake), so it runs on a worker
thread and reports back as `WorkDone`; after that the link is non-blocking:
the actor watches its socket for reading, and for writing while framed
bytes wait (adapters/websocket_link.py).
"""

from __future__ import annotations

import json
import time
from collections import deque

from keruta_actors import meter
from keruta_actors.actors.base import KerutaActor
from keruta_actors.adapters import reactor
from keruta_actors.adapters.process_memory import release_memory
from keruta_actors.adapters.websocket_link import WebSocketLink
from keruta_actors.endpoints import credentials_from, websocket_endpoint
from keruta_actors.errors import LinkError
from keruta_actors.messages import (
    Batches,
    BatchesAcked,
    Configure,
    LinkLost,
    LinkUp,
    RelieveMemory,
    WorkDone,
)
from keruta_actors.policy.ordering import InOrder
from keruta_actors.policy.receipts import Receipts, encode_batch
from keruta_actors.policy.server_errors import Fatal, Rejected, ServerErrors, SlowDown, error_type
from keruta_actors.records import LogMessageEncoder


class Connection(KerutaActor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.link: WebSocketLink | None = None
        self.connected = False
        self.lost = False
        self.in_order: InOrder[Batches] = InOrder()
        self.held: deque[Batches] = deque()  # in order, waiting out a slow-down
        self.paused_until: float | None = None
        self.server_errors = ServerErrors()
        self.on_the_wire: dict[int, tuple[int, int]] = {}  # batch id -> (records, bytes), until confirmed
        self.rejected: list[tuple[int, int]] = []  # (batch id, records) the server refused

    def receiveMsg_Configure(self, message: Configure, sender) -> None:
        if self.link is not None:
            return  # a repeated delivery of the same Configure
        self.configured = message
        self.batcher = message.downstream
        self.receipts = Receipts()
        self.encoder = LogMessageEncoder(message.plan.task_id)
        websocket = message.settings.websocket
        self.heartbeat = websocket.heartbeat_interval
        self.link = WebSocketLink(
            url=websocket_endpoint(websocket.url, message.plan.task_id, websocket.security.enable_ssl),
            credentials=credentials_from(message.settings.auth),
            timeout=websocket.timeout,
            verify_cert=websocket.security.verify_cert,
            ca_file=websocket.security.cert_path,
            allow_clear_text=message.settings.auth.allow_clear_text_credentials,
        )
        worker = reactor.Worker(reactor.current(), self.myAddress, "keruta-websocket-connect")
        worker.submit("connect", self.link.connect)
        worker.stop()

    def receiveMsg_WorkDone(self, message: WorkDone, sender) -> None:
        if self.lost or self.connected:
            return
        if isinstance(message.result, LinkError):
            self._lose(str(message.result), message.result.fatal, message.result.unserved)
            return
        if isinstance(message.result, Exception):
            self._lose(f"cannot connect to {self.link.url}: {message.result}")
            return
        self.connected = True
        self.send(self.configured.supervisor, LinkUp(self.configured.generation, ()))
        self._flush()  # the auth frame
        self.heartbeat_due = time.monotonic() + self.heartbeat
        self.wake_at(self.heartbeat_due)

    def receiveMsg_Batches(self, message: Batches, sender) -> None:
        if self.lost:
            return
        # The server must see each stream in order.
        self.held.extend(self.in_order.arrived(message.seq, message))
        self._handle_events()  # a hello may be waiting: it decides the framing
        self._send_held(time.monotonic())

    def _send_held(self, now: float) -> None:
        if self.paused_until is not None:
            if now < self.paused_until:  # the server asked us to slow down
                if self.held:
                    self.wake_at(self.paused_until)
                return
            self.paused_until = None
        while self.held and not self.lost:
            self._send_batches(self.held.popleft())

    def _send_batches(self, message: Batches) -> None:
        for batch_id, batch in message.batches:
            size = 0
            for frame in encode_batch(batch_id, batch, self.encoder, self.receipts.batch_frames):
                self.link.send_text(frame)
                size += len(frame)
            self.on_the_wire[batch_id] = (len(batch), size)
        ping = self.receipts.sent(tuple(batch_id for batch_id, _ in message.batches), time.monotonic())
        if ping is not None:
            self.link.ping(ping.marker)
        self._flush()

    def on_ready(self, readable: tuple[int, ...], writable: tuple[int, ...]) -> None:
        if self.lost or not self.connected:
            return
        if writable:
            self._flush()
        if readable and not self.lost:
            self._handle_events()

    def _flush(self) -> None:
        """Write what waits; watch for writability while some is left."""
        try:
            left = self.link.flush()
        except LinkError as error:
            self._lose(str(error))
            return
        self.watch(readable=(self.link.fileno,), writable=(self.link.fileno,) if left else ())

    def on_tick(self, now: float) -> None:
        if self.lost:
            return
        if now >= self.heartbeat_due:
            self._heartbeat(now)
        if not self.lost:
            self._send_held(now)
        if not self.lost:
            self.wake_at(self.heartbeat_due)

    def _heartbeat(self, now: float) -> None:
        oldest = self.receipts.oldest_unanswered()
        if oldest is not None and now - oldest > self.heartbeat:
            self._lose(f"no pong from the server for {now - oldest:.0f}s")
            return
        self.link.ping(self.receipts.ping(now).marker)
        self._flush()
        self.heartbeat_due = now + self.heartbeat

    def receiveMsg_RelieveMemory(self, message: RelieveMemory, sender) -> None:
        release_memory()

    def on_exit(self) -> None:
        if self.connected and not self.lost:
            self.link.close()
        elif self.link is not None and not self.lost:
            self.link.abort()  # still connecting

    def _handle_events(self) -> None:
        confirmed: list[int] = []
        for event in self.link.receive():
            if event.kind == "pong":
                confirmed.extend(self.receipts.ponged(event.data))
            elif event.kind == "text":
                confirmed.extend(self._server_frame(event.data))
            elif event.kind == "closed":
                self._confirm(confirmed)
                self._lose(event.data)
                return
        self._confirm(confirmed)
        if self.link.pending:
            self._flush()  # pongs to the server's pings

    def _server_frame(self, text: str) -> tuple[int, ...]:
        """Act on one frame from the server; returns the batches it confirms."""
        try:
            frame = json.loads(text)
            kind = frame["type"]
        except (ValueError, TypeError, KeyError):
            self.log.warning("ignored a frame from the server that is not a JSON message: %.80r", text)
            return ()
        if kind == "ack":
            return self.receipts.acked(frame.get("batchId"))
        if kind == "hello":
            self.receipts.announced(frame.get("capabilities") or [])
        elif kind == "ping":
            self.link.send_text('{"type":"pong"}')
        elif kind == "error":
            return self._server_error(frame)
        elif kind != "subscribed":
            self.log.warning("ignored a server message of unknown type %.40r", kind)
        return ()

    def _server_error(self, frame: dict) -> tuple[int, ...]:
        """An `error` frame: counted, logged, and acted on (policy/server_errors.py)."""
        meter.current().error(error_type(frame.get("code")))
        self.log.warning("the server reported %s: %s", frame.get("code"), frame.get("message"))
        decision = self.server_errors.received(frame, time.monotonic())
        if isinstance(decision, Fatal):
            self._lose(decision.problem, fatal=True)
        elif isinstance(decision, SlowDown):
            self.paused_until = max(decision.until, self.paused_until or 0.0)
        elif isinstance(decision, Rejected) and decision.batch_id in self.on_the_wire:
            self.rejected.append((decision.batch_id, self.on_the_wire.pop(decision.batch_id)[0]))
            return (decision.batch_id,)
        return ()

    def _confirm(self, batch_ids: list[int]) -> None:
        """One message for all that one read of the socket confirms."""
        if batch_ids:
            self.send(self.batcher, BatchesAcked(tuple(batch_ids), tuple(self.rejected)))
            sizes = [self.on_the_wire.pop(i)[1] for i in batch_ids if i in self.on_the_wire]
            meter.current().sent("websocket", len(sizes), sum(sizes))
            if sizes:
                self.server_errors.confirmed()
        self.rejected = []

    def _lose(self, problem: str, fatal: bool = False, unserved: bool = False) -> None:
        if self.lost:
            return
        self.lost = True
        self.watch()
        if self.connected:
            self.link.close()
        self.send(self.configured.supervisor, LinkLost(self.configured.generation, problem, fatal, unserved))
