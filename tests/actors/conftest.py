"""Single actors under Thespian's in-process base, the agent's own, with
probes for neighbours.

simpleSystemBase runs every actor in this process and delivers messages by
reference; the actors' timers, descriptors and worker threads are served by
the reactor (adapters/reactor.py), so they fire only while a test runs it:
`run_for(seconds)` or a `wait_until`.
"""

from __future__ import annotations

import time

import pytest
from thespian.actors import ActorSystem, ActorTypeDispatcher

from keruta_actors.adapters.reactor import Reactor, current
from keruta_actors.config import load_settings
from keruta_actors.messages import RunPlan
from keruta_actors.records import RecordBlock

SHARED = ({"processId": 1},) * 3


class Probe(ActorTypeDispatcher):
    """Stands in for a neighbour: keeps what it is sent and answers "report"
    with the list; ("send", target, message) makes it send `message`, so the
    actor under test sees the probe as its upstream."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def receiveMessage(self, message, sender):
        if message == "report":
            self.send(sender, list(self.seen))
        elif isinstance(message, tuple) and message[:1] == ("send",):
            self.send(message[1], message[2])
        elif not isinstance(message, str):
            self.seen.append(message)


@pytest.fixture
def system():
    actor_system = ActorSystem("simpleSystemBase", transientUnique=True)
    loop = Reactor(actor_system).install()
    yield actor_system
    actor_system.shutdown()
    loop.close()


@pytest.fixture
def run_for(system):
    """Run the reactor for `seconds`: timers fire, workers report back."""
    return lambda seconds: current().run_until(lambda: False, seconds)


@pytest.fixture
def wait_until(system):
    """Run the reactor until `condition()` returns something true; returns it."""

    def wait(condition, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = condition()
            if found:
                return found
            current().run_once(0.02)
        raise AssertionError(f"still not so after {timeout}s")

    return wait


@pytest.fixture
def plan():
    return RunPlan("task", "run1", ("sh", "-c", "true"), "", "host", "0.1.0")


@pytest.fixture
def probe(system):
    return lambda: system.createActor(Probe)


@pytest.fixture
def seen(system):
    """What a probe has been sent, of the given types."""
    return lambda probe, *types: [m for m in system.ask(probe, "report", 1) if isinstance(m, types)]


@pytest.fixture
def make_settings():
    return lambda **overrides: load_settings(environ={}, overrides=overrides)


@pytest.fixture
def lines():
    """A block of stdout records numbered from `first`."""

    def make(first, count, level="INFO", text="line {n}"):
        return RecordBlock.of_lines("run1", "stdout", first, time.time(), [level] * count,
                                    [(text.format(n=n), None) for n in range(first, first + count)], SHARED)

    return make
