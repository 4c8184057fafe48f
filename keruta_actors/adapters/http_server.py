"""A small HTTP server on a daemon thread of its own, for the monitoring and
debug endpoints: requests never run on the agent's loop.

Routes map (method, path) to a handler `handler(query) -> Answer`, which
runs on the server's request thread, so it may read only thread-safe state
(the metrics registry, an immutable snapshot) or block on its own (a
profile that samples for N seconds). A handler that raises answers 500.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("keruta_actors.http")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def json(cls, status: int, body: object) -> "Answer":
        return cls(status, json.dumps(body, indent=1).encode() + b"\n", "application/json")


Handler = Callable[[Mapping[str, str], Mapping[str, str]], Answer]  # (query, headers) -> Answer


class HttpServer:
    def __init__(self, name: str, host: str, port: int, routes: Mapping[tuple[str, str], Handler]) -> None:
        """Binds at once (OSError if it cannot); serves after `start`."""
        request_handler = type("RequestHandler", (_RequestHandler,), {"routes": dict(routes)})
        server_class = _Server6 if ":" in host else _Server4
        self._server = server_class((host, port), request_handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    def start(self) -> "HttpServer":
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


class _Server4(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server4):
    address_family = socket.AF_INET6


class _RequestHandler(BaseHTTPRequestHandler):
    routes: dict[tuple[str, str], Handler] = {}
    server_version = "keruta-actors"

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        handler = self.routes.get((method, url.path))
        if handler is None:
            known = sorted({path for _, path in self.routes})
            allowed = [m for m, path in self.routes if path == url.path]
            status = 405 if allowed else 404
            answer = Answer(status, (f"{method} {url.path}: not here; endpoints: {', '.join(known)}\n").encode())
        else:
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            try:
                answer = handler(query, self.headers)
            except Exception as error:  # noqa: BLE001 - one request fails, the server goes on
                log.exception("%s %s failed", method, url.path)
                answer = Answer(500, f"{type(error).__name__}: {error}\n".encode())
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)
