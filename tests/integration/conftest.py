"""Fixtures for tests that run the real agent (real processes, real sockets
on 127.0.0.1) against the real reference receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass

import psutil
import pytest

from keruta_actors.receiver.app import ReceiverThread
from tests.keruta_api_standin import KerutaApiStandIn, StandInThread

MARKER = "KERUTA_TEST_MARKER"


@dataclass
class AgentRun:
    """One `python -m keruta_actors` invocation, tagged so that every process
    it starts (actors, the child) can be found through its environment."""

    env: dict[str, str]
    marker: str

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "keruta_actors", *args]

    def run(self, *args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), env=self.env, capture_output=True, timeout=timeout, **kwargs)

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), env=self.env, **kwargs)

    def processes(self) -> list[psutil.Process]:
        """Every live process carrying this run's marker."""
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get(MARKER) == self.marker and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found


@pytest.fixture
def receiver(tmp_path, scripted_api):
    """The reference receiver, behind `scripted_api` (which answers as the
    real endpoints do until a test scripts it otherwise)."""
    with ReceiverThread(str(tmp_path / "receiver.db"), middlewares=[scripted_api.middleware]) as running:
        yield running


def _agent_run(tmp_path, **env: str):
    """An AgentRun with none of this machine's KERUTA_ variables, and `env`;
    after the test, no process of it may be left."""
    marker = uuid.uuid4().hex
    clean = {key: value for key, value in os.environ.items() if not key.startswith("KERUTA_")}
    run = AgentRun(clean | {
        MARKER: marker,
        "KERUTA_LOGGING__FORMAT": "text",
        "KERUTA_LOGGING__OUTPUT": "stderr",
        "TMPDIR": str(tmp_path),
        # Every task's spool lives here: a test's spool must not meet another's.
        "KERUTA_LOGSTREAMING__STATEDIR": str(tmp_path / "state"),
    } | env, marker)
    yield run
    leftovers = run.processes()
    for process in leftovers:
        process.kill()
    assert not leftovers, f"processes left behind: {leftovers}"


@pytest.fixture
def agent(receiver, tmp_path):
    yield from _agent_run(tmp_path, KERUTA_WEBSOCKET_URL=receiver.ws_url, KERUTA_API_URL=receiver.api_url)


@pytest.fixture
def keruta_api():
    """The stand-in for the keruta API as deployed (tests/keruta_api_standin.py)."""
    with StandInThread(KerutaApiStandIn()) as running:
        yield running


@pytest.fixture
def pod(keruta_api, tmp_path):
    """An agent in a keruta task pod's environment: KERUTA_API_URL a bare
    host, a KERUTA_API_TOKEN, and no WebSocket URL."""
    yield from _agent_run(tmp_path, KERUTA_API_URL=keruta_api.base_url, KERUTA_API_TOKEN="pod-service-token")
