"""One WebSocket connection to the keruta API, built on websocket-client.

websocket-client reads frames with blocking calls, while an actor must return
to Thespian between messages. So a daemon thread reads frames and queues them
as events, and writes one byte to a pipe; the connection actor watches that
pipe (ThespianWatch) and drains the queue when it wakes. Sends happen on the
actor's own thread; websocket-client keeps separate locks for sending and
receiving, which is what makes this split safe.

Library exceptions are turned into `LinkError` here, at the boundary.
"""

from __future__ import annotations

import json
import os
import queue
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import websocket

from keruta_actors.errors import LinkError


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "text" | "pong" | "closed"
    data: str = ""


@dataclass(frozen=True, slots=True)
class Credentials:
    kind: str  # "bearer" | "api-key"
    secret: str


def handshake_headers(credentials: Credentials | None) -> list[str]:
    if credentials is None:
        return []
    if credentials.kind == "api-key":
        return [f"X-API-Key: {credentials.secret}"]
    return [f"Authorization: Bearer {credentials.secret}"]


class WebSocketLink:
    def __init__(
        self,
        url: str,
        credentials: Credentials | None,
        timeout: float,
        verify_cert: bool = True,
        ca_file: str = "",
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.timeout = timeout
        self.verify_cert = verify_cert
        self.ca_file = ca_file
        self._socket: websocket.WebSocket | None = None
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._closing = False

    @property
    def wake_fd(self) -> int:
        """Readable whenever events are queued."""
        return self._wake_read

    def connect(self) -> None:
        """Open the connection and authenticate; raise LinkError on failure."""
        sslopt = self._ssl_options()
        try:
            self._socket = websocket.create_connection(
                self.url,
                timeout=self.timeout,
                header=handshake_headers(self.credentials),
                sslopt=sslopt,
                enable_multithread=True,
                skip_utf8_validation=True,
            )
        except Exception as error:  # noqa: BLE001 - translated at the boundary
            raise LinkError.from_exception(error, f"cannot connect to {self.url}") from None
        if self.credentials is not None and self.credentials.kind == "bearer":
            self.send_text(json.dumps({"type": "auth", "token": self.credentials.secret}))
        threading.Thread(target=self._read_frames, name="websocket-reader", daemon=True).start()

    def send_text(self, text: str) -> None:
        try:
            self._socket.send(text)
        except Exception as error:  # noqa: BLE001
            raise LinkError.from_exception(error, "send failed") from None

    def ping(self, payload: str) -> None:
        try:
            self._socket.ping(payload)
        except Exception as error:  # noqa: BLE001
            raise LinkError.from_exception(error, "ping failed") from None

    def events(self) -> list[Event]:
        """Everything the server said since the last call, in order."""
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass
        drained = []
        while True:
            try:
                drained.append(self._events.get_nowait())
            except queue.Empty:
                return drained

    def close(self) -> None:
        self._closing = True
        if self._socket is not None:
            try:
                self._socket.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a broken link is best effort
                pass
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    def _ssl_options(self) -> dict:
        if urlsplit(self.url).scheme != "wss":
            return {}
        if not self.verify_cert:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        options = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
        if self.ca_file:
            options["ca_certs"] = self.ca_file
        return options

    def _read_frames(self) -> None:
        while not self._closing:
            try:
                opcode, frame = self._socket.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                continue
            except Exception as error:  # noqa: BLE001 - any read failure ends the link
                self._post(Event("closed", f"connection lost: {describe(error)}"))
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._post(Event("closed", f"server closed the connection{close_reason(frame.data)}"))
                return
            if opcode == websocket.ABNF.OPCODE_PONG:
                self._post(Event("pong", frame.data.decode("utf-8", "replace")))
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                self._post(Event("text", frame.data.decode("utf-8", "replace")))

    def _post(self, event: Event) -> None:
        self._events.put(event)
        try:
            os.write(self._wake_write, b"!")
        except OSError:
            pass  # the pipe is full (the actor will drain it anyway) or closed


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def close_reason(data: bytes) -> str:
    if len(data) < 2:
        return ""
    code = int.from_bytes(data[:2], "big")
    reason = data[2:].decode("utf-8", "replace")
    return f" (code {code}{': ' + reason if reason else ''})"
