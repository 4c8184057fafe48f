"""A TCP proxy on 127.0.0.1 that can drop every connection through it at
once (a reset, as a dead node or a restarted load balancer would), and
refuse new ones while `refusing` (a server gone away), for fault tests
between the real agent and the real receiver."""

from __future__ import annotations

import selectors
import socket
import struct
import threading


class LinkProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.dropped = 0  # connections cut so far
        self.refusing = False  # reset every new connection at once
        self._thread = threading.Thread(target=self._accept, name="link-proxy", daemon=True)

    def __enter__(self) -> "LinkProxy":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stopped.set()
        self._listener.close()
        self.drop()
        self._thread.join(timeout=5)

    def drop(self) -> int:
        """Reset every connection through the proxy; returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _reset(sock)
        self.dropped += len(pairs)
        return len(pairs)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                _reset(client)
                continue
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._pairs.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        try:
            # a pair dropped as soon as it was accepted is closed already (fd -1)
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(1 << 16)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return  # dropped
        finally:
            selector.close()


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
