"""Which transport carries the records, and when to try each (SPEC §6).

The WebSocket comes first. A lost WebSocket is tried again on the reconnect
policy's backoff; after `maxReconnectAttempts` failures in a row the REST API
takes over while the WebSocket goes on being probed on the same capped,
jittered backoff. When a probe connects, the WebSocket takes over again and
REST is retired. A REST connection that fails (its own retries spent) is
started again after a backoff from `api.retryInterval`, for as long as the
WebSocket stays down.

A WebSocket handshake that the server answers with an HTTP status instead
of 101 ("unserved": the server is up, but has no log WebSocket there, as the
deployed keruta API answers 500) hands over to REST at once, without waiting
out `maxReconnectAttempts`; the WebSocket is still probed on the backoff.

A fatal failure (retrying cannot help: refused credentials, clear text to a
remote host, an unknown task) retires that transport for the rest of the run.

The supervisor feeds events in and carries out the actions that come back;
it also keeps the actor addresses and generations, which this plan never
needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from keruta_actors.policy.backoff import (
    GiveUp,
    ReconnectPolicy,
    Uniform,
    retry_delays,
)

WEBSOCKET = "websocket"
REST = "rest"


@dataclass(frozen=True, slots=True)
class Start:
    """Start a connection of this kind now."""

    kind: str


@dataclass(frozen=True, slots=True)
class Use:
    """Hand the batcher this kind's connection (None: hold records back)."""

    kind: str | None


@dataclass(frozen=True, slots=True)
class Retire:
    """Stop this kind's connection."""

    kind: str


Action = Start | Use | Retire


class TransportPlan:
    def __init__(self, websocket: ReconnectPolicy, rest_retry_interval: float, rng: Uniform, cap: float = 60.0) -> None:
        self.websocket = websocket
        self._rest_interval = rest_retry_interval
        self._rng = rng
        self._cap = cap
        self._rest_delays = self._fresh_rest_delays()
        self.active: str | None = None  # whose connection the batcher has
        self.running: set[str] = set()  # kinds with a connection started and not lost
        self.dead: set[str] = set()  # kinds that failed fatally
        self.due: dict[str, float] = {}  # kind -> when to start it

    def start(self) -> list[Action]:
        self.running.add(WEBSOCKET)
        return [Start(WEBSOCKET)]

    @property
    def all_dead(self) -> bool:
        """Both transports failed for good: nothing can be delivered this run."""
        return {WEBSOCKET, REST} <= self.dead

    @property
    def falling_back(self) -> bool:
        """True once REST has taken over from the WebSocket."""
        return self.websocket.exhausted or WEBSOCKET in self.dead

    def up(self, kind: str) -> list[Action]:
        if kind == WEBSOCKET:
            self.websocket.succeeded()
            self._rest_delays = self._fresh_rest_delays()
            self.due.pop(REST, None)
            actions: list[Action] = [Use(WEBSOCKET)]
            if REST in self.running:
                self.running.discard(REST)
                actions.append(Retire(REST))
            self.active = WEBSOCKET
            return actions
        if self.active == WEBSOCKET:
            self.running.discard(REST)
            return [Retire(REST)]  # the WebSocket came back first
        self.active = REST
        return [Use(REST)]

    def lost(self, kind: str, now: float, fatal: bool, unserved: bool = False) -> list[Action]:
        self.running.discard(kind)
        actions: list[Action] = []
        if self.active == kind:
            self.active = None
            actions.append(Use(None))
        if fatal:
            self.dead.add(kind)
        elif kind == WEBSOCKET:
            decision = self.websocket.gave_up(now) if unserved else self.websocket.failed(now)
            self.due[WEBSOCKET] = decision.probe_at if isinstance(decision, GiveUp) else decision.when
        else:
            self.due[REST] = now + next(self._rest_delays)
        if kind == WEBSOCKET and self.falling_back and REST not in self.running and REST not in self.due:
            actions += self._start(REST)
        return actions

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for kind, due in sorted(self.due.items()):
            if now >= due:
                del self.due[kind]
                actions += self._start(kind)
        return actions

    def next_due(self) -> float | None:
        return min(self.due.values(), default=None)

    def _start(self, kind: str) -> list[Action]:
        if kind in self.dead or kind in self.running:
            return []
        if kind == REST and self.active == WEBSOCKET:
            return []
        self.running.add(kind)
        return [Start(kind)]

    def _fresh_rest_delays(self) -> Iterator[float]:
        return retry_delays(self._rest_interval, self._rng, self._cap)
