"""The link to the keruta API as /health, the `websocket_status` alert
signal and the metrics see it (SPEC §8). The supervisor reports what it
does (through the meter); this keeps the state that follows.

websocket status (conditions.WEBSOCKET_STATUSES):

    connecting    a WebSocket is being connected: the first, or again after a failure
    connected     it is up
    disconnected  it failed, and is being tried again (over REST meanwhile,
                  once `maxReconnectAttempts` are spent)
    retired       the server serves no log WebSocket there (its handshake
                  answered with an HTTP status, as the deployed keruta API
                  does), or refused us for good. Probes go on, but only one
                  that connects changes the status: a retired WebSocket does
                  not flap to `connecting` and back at every probe.

transport: where records go now, as the batcher is told: `websocket`,
`rest`, or `spool` when no link is usable and records wait.
"""

from __future__ import annotations

WEBSOCKET, REST, SPOOL = "websocket", "rest", "spool"
CONNECTING, CONNECTED, DISCONNECTED, RETIRED = "connecting", "connected", "disconnected", "retired"


class LinkState:
    def __init__(self, now: float) -> None:
        self.status = CONNECTING
        self.transport = WEBSOCKET
        self.down_since: float | None = now  # when the WebSocket was last up, or the run began
        self._started: set[str] = set()

    def started(self, kind: str) -> bool:
        """A connection of this kind starts; True if it is a reconnect."""
        again = kind in self._started
        self._started.add(kind)
        if kind == WEBSOCKET and self.status != RETIRED:
            self.status = CONNECTING
        return again

    def up(self, kind: str) -> None:
        if kind == WEBSOCKET:
            self.status, self.down_since = CONNECTED, None

    def lost(self, kind: str, now: float, fatal: bool = False, unserved: bool = False) -> None:
        if kind != WEBSOCKET:
            return
        if fatal or unserved:
            self.status = RETIRED
        elif self.status != RETIRED:
            self.status = DISCONNECTED
        if self.down_since is None:
            self.down_since = now

    def using(self, kind: str | None) -> None:
        self.transport = kind if kind is not None else SPOOL
