"""One WebSocket connection to the keruta API, non-blocking once open.

websocket-client makes the connection (handshake, TLS, credentials in the
handshake) in `connect`, which blocks and so runs on a worker thread. From
then on the socket is non-blocking and driven by the agent's reactor: what
is sent is framed here (adapters/frames.py) into an outgoing buffer that
`flush` writes as far as the socket takes it (the connection watches for
writability while something is left), and `receive` takes whatever the
socket holds in one go and turns it into events through `FrameReader`. A
hung server therefore fills a buffer; it never blocks the agent. Pings from
the server are answered here, in order with everything else on the link.

Library exceptions are turned into `LinkError` here, at the boundary.
"""

from __future__ import annotations

import json
import os
import socket
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
    client_frame,
)
from keruta_actors.adapters.tls import client_context
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
        self._out = bytearray()  # framed, not yet taken by the socket

    @property
    def fileno(self) -> int:
        return self._socket.sock.fileno()

    @property
    def pending(self) -> int:
        """Bytes framed and not yet written."""
        return len(self._out)

    def connect(self) -> None:
        """Open the connection and authenticate; raise LinkError on failure.
        Blocks (DNS, TCP, TLS, the handshake): call it off the reactor."""
        refusal = clear_text_refusal(self.url, self.credentials is not None, self.allow_clear_text)
        if refusal:
            raise LinkError(refusal, fatal=True)
        # Made before connecting, so that `abort` can reach its socket.
        self._socket = websocket.WebSocket(sslopt=self._ssl_options(), skip_utf8_validation=True)
        self._socket.settimeout(self.timeout)
        try:
            self._socket.connect(self.url, header=handshake_headers(self.credentials))
            self._socket.sock.setblocking(False)
        except Exception as error:  # noqa: BLE001 - translated at the boundary
            raise LinkError.from_exception(error, f"cannot connect to {self.url}") from None
        if self.credentials is not None and self.credentials.kind == "bearer":
            self.send_text(json.dumps({"type": "auth", "token": self.credentials.secret}))

    def abort(self) -> None:
        """From any thread: end a `connect` under way at once (it raises
        LinkError), so that the agent need not wait out its timeout to exit."""
        sock = self._socket.sock if self._socket is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected yet, or already closed

    def send_text(self, text: str) -> None:
        """Frame `text` for sending; `flush` writes it."""
        self._out += client_frame(TEXT, text.encode("utf-8"), os.urandom(4))

    def ping(self, payload: str) -> None:
        self._out += client_frame(PING, payload.encode("utf-8"), os.urandom(4))

    def flush(self) -> bool:
        """Write what the socket takes now; True while some is left (watch
        for writability). Raises LinkError when the connection is broken."""
        sock = self._socket.sock
        try:
            while self._out:
                sent = sock.send(self._out)
                del self._out[:sent]
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except OSError as error:
            raise LinkError(f"send failed: {describe(error)}") from None
        return bool(self._out)

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
                self._out += client_frame(PONG, payload, os.urandom(4))
            elif opcode == CLOSE:
                return events + [Event("closed", f"the server closed the connection{close_reason(payload)}")]
        if ended:
            events.append(Event("closed", "the server closed the connection without a close frame"))
        return events

    def close(self) -> None:
        """Say goodbye if the socket takes it at once, and close; never blocks."""
        if self._socket is None or self._socket.sock is None:
            return
        self._out += client_frame(CLOSE, (1000).to_bytes(2, "big"), os.urandom(4))
        try:
            self.flush()
        except LinkError:
            pass  # closing a broken link is best effort
        self._socket.sock.close()

    def _read_available(self) -> tuple[bytes, bool]:
        """What the socket holds now, and whether the peer has hung up."""
        sock = self._socket.sock
        chunks = []
        while True:
            try:
                data = sock.recv(READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return b"".join(chunks), False
            if not data:
                return b"".join(chunks), True
            chunks.append(data)

    def _ssl_options(self) -> dict:
        """TLS trust from our configuration alone: an explicit context, so
        that websocket-client does not reach for WEBSOCKET_CLIENT_CA_BUNDLE."""
        if urlsplit(self.url).scheme != "wss":
            return {}
        return {"context": client_context(self.verify_cert, self.ca_file)}


def describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


def close_reason(data: bytes) -> str:
    if len(data) < 2:
        return ""
    code = int.from_bytes(data[:2], "big")
    reason = data[2:].decode("utf-8", "replace")
    return f" (code {code}{': ' + reason if reason else ''})"
