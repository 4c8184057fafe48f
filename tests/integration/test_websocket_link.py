"""The WebSocket adapter against a real socket on loopback."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from keruta_actors.adapters.websocket_link import WebSocketLink
from keruta_actors.errors import LinkError


def test_abort_ends_a_connect_that_waits_on_a_silent_server():
    """The agent's exit must not wait out the connect timeout (30 s here)
    while a server that took the connection never answers the handshake."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        link = WebSocketLink(f"ws://127.0.0.1:{server.getsockname()[1]}/ws/tasks/t", None, timeout=30)
        outcome: list[BaseException] = []

        def connect() -> None:
            try:
                link.connect()
            except LinkError as error:
                outcome.append(error)

        connecting = threading.Thread(target=connect)
        connecting.start()
        accepted, _ = server.accept()
        with accepted:
            time.sleep(0.1)  # the handshake request is on its way or read
            started = time.monotonic()
            link.abort()
            connecting.join(5)
            assert not connecting.is_alive() and time.monotonic() - started < 2
    (error,) = outcome
    assert "cannot connect to ws://127.0.0.1" in str(error)


def test_abort_before_connecting_is_harmless(closed_port):
    link = WebSocketLink(f"ws://127.0.0.1:{closed_port}/ws/tasks/t", None, timeout=1)
    link.abort()
    with pytest.raises(LinkError):
        link.connect()
