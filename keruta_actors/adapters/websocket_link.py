"""One WebSocket connection to the keruta API.

websocket-client makes the connection (handshake, TLS, credentials in the
handshake) and frames what we send. Reading needs no thread: the connection
actor asks Thespian to watch `fileno` (ThespianWatch), and when it is
readable calls `receive`, which takes whatever the socket holds in one go and
turns it into events through `FrameReader`. Pings from the server are
answered here, in order with everything else on the link.

Library exceptions are turned into `LinkError` here, at the boundary.
"""

from __future__ import annotations

import json
import select
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import websocket

from keruta_actors.adapters.frames import (
    CLOSE,
    PING,
    PONG,
    TEXT,
    FrameError,
    FrameReader,
)
from keruta_actors.endpoints import Credentials, clear_text_refusal
from keruta_actors.errors import LinkError

# The largest message from the server we accept. Servers send small control
# messages (hello, ack, error); anything near this is hostile or broken.
MAX_SERVER_MESSAGE = 1 << 20
READ_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "text" | "pong" | "closed"
    data: str = ""


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
        allow_clear_text: bool = False,
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.timeout = timeout
        self.verify_cert = verify_cert
        self.ca_file = ca_file
        self.allow_clear_text = allow_clear_text
        self._socket: websocket.WebSocket | None = None
        self._frames = FrameReader(MAX_SERVER_MESSAGE)

    @property
    def fileno(self) -> int:
        """Readable when the server has said something."""
        return self._socket.sock.fileno()

    def connect(self) -> None:
        """Open the connection and authenticate; raise LinkError on failure."""
        refusal = clear_text_refusal(self.url, self.credentials is not None, self.allow_clear_text)
        if refusal:
            raise LinkError(refusal, fatal=True)
        try:
            self._socket = websocket.create_connection(
                self.url,
                timeout=self.timeout,
                header=handshake_headers(self.credentials),
                sslopt=self._ssl_options(),
                skip_utf8_validation=True,
            )
        except Exception as error:  # noqa: BLE001 - translated at the boundary
            raise LinkError.from_exception(error, f"cannot connect to {self.url}") from None
        if self.credentials is not None and self.credentials.kind == "bearer":
            self.send_text(json.dumps({"type": "auth", "token": self.credentials.secret}))

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

    def receive(self) -> list[Event]:
        """Everything the server said that has arrived, in order; never blocks
        for more. A final `closed` event means the link is over."""
        try:
            data, ended = self._read_available()
            messages = self._frames.feed(data)
        except FrameError as error:
            return [Event("closed", f"protocol error from the server: {error}")]
        except OSError as error:
            return [Event("closed", f"connection lost: {describe(error)}")]
        events = []
        for opcode, payload in messages:
            if opcode == TEXT:
                events.append(Event("text", payload.decode("utf-8", "replace")))
            elif opcode == PONG:
                events.append(Event("pong", payload.decode("utf-8", "replace")))
            elif opcode == PING:
                self._socket.pong(payload)
            elif opcode == CLOSE:
                return events + [Event("closed", f"the server closed the connection{close_reason(payload)}")]
        if ended:
            events.append(Event("closed", "the server closed the connection without a close frame"))
        return events

    def close(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close(timeout=1)
            except Exception:  # noqa: BLE001 - closing a broken link is best effort
                pass

    def _read_available(self) -> tuple[bytes, bool]:
        """What the socket holds now, and whether the peer has hung up. Reads
        only while data is there: a socket with a timeout ignores MSG_DONTWAIT."""
        sock = self._socket.sock
        chunks = []
        # TLS may hold decrypted bytes that the descriptor no longer shows
        while (isinstance(sock, ssl.SSLSocket) and sock.pending()) or select.select([sock], [], [], 0)[0]:
            try:
                data = sock.recv(READ_SIZE)
            except ssl.SSLWantReadError:  # only part of a TLS record is here yet
                break
            if not data:
                return b"".join(chunks), True
            chunks.append(data)
        return b"".join(chunks), False

    def _ssl_options(self) -> dict:
        if urlsplit(self.url).scheme != "wss":
            return {}
        if not self.verify_cert:
            return {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        options = {"cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True}
        if self.ca_file:
            options["ca_certs"] = self.ca_file
        return options


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def close_reason(data: bytes) -> str:
    if len(data) < 2:
        return ""
    code = int.from_bytes(data[:2], "big")
    reason = data[2:].decode("utf-8", "replace")
    return f" (code {code}{': ' + reason if reason else ''})"
