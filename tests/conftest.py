"""Test-wide settings and fixtures.

Hypothesis profiles are chosen by HYPOTHESIS_PROFILE: `dev` (the default)
keeps the suite quick; `ci` runs more examples within CI's time budget;
`thorough` is for a long local hunt.
"""

import json
import os
import socket
import time
from collections import deque

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=5000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


class ScriptedApi:
    """A scripted keruta API in front of the reference receiver: an aiohttp
    middleware that logs every request, and answers from the script before
    the real endpoints do.

        receiver = ReceiverThread(db, middlewares=[scripted.middleware])
    """

    def __init__(self) -> None:
        self.requests: list[tuple[float, str]] = []  # (monotonic time, path)
        self.post_paths: list[tuple[float, str]] = []  # the same, of POST requests only
        self.answers: deque[tuple[int, dict[str, str]]] = deque()  # for the next REST posts
        self.batch_endpoint = True
        self.websocket = True
        self.refused_lines: set[int] = set()  # a post holding one of these lineNumbers gets 400

    def answer(self, status: int, times: int = 1, **headers: str) -> None:
        self.answers.extend([(status, headers)] * times)

    def posts(self) -> list[tuple[float, str]]:
        return [(at, path) for at, path in self.post_paths if path.startswith("/api/")]

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        self.requests.append((time.monotonic(), request.path))
        if request.method == "POST":  # not the agent's health checks (GET /api/v1/health)
            self.post_paths.append((time.monotonic(), request.path))
        if request.path.startswith("/ws/") and not self.websocket:
            raise web.HTTPServiceUnavailable()
        if request.method != "POST":
            return await handler(request)
        if self.answers:
            status, headers = self.answers.popleft()
            return web.json_response({"code": "SCRIPTED", "message": "scripted"}, status=status, headers=headers)
        if request.path.endswith("/batch") and not self.batch_endpoint:
            raise web.HTTPNotFound()
        body = json.loads(await request.read())  # aiohttp keeps it for the handler
        records = body if isinstance(body, list) else [body]
        if any(record.get("lineNumber") in self.refused_lines for record in records):
            return web.json_response({"code": "INVALID_LOG_FORMAT", "message": "refused"}, status=400)
        return await handler(request)


@pytest.fixture
def scripted_api():
    return ScriptedApi()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
