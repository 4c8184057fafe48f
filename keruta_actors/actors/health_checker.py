"""The health checker: refreshes what /health and /livez answer (SPEC §8).

Every `monitoring.health.interval` it
- asks the supervisor for its last memory reading (`QueryMemory`). The
  answer is the memory check, and its arrival is the liveness round trip:
  every actor runs on the one loop thread, so a supervisor that answers
  means the loop runs and no handler is stuck (a stuck handler would stop
  all of them);
- checks the keruta API's health endpoint on its worker thread, under
  `monitoring.health.timeout`, one check at a time;
- reads the WebSocket's state from the meter.

Each result is published at once as a new immutable `Snapshot` on the
meter, which the HTTP thread reads; no request ever waits on a check.
"""

from __future__ import annotations

import time

from keruta_actors import meter
from keruta_actors.actors.base import KerutaActor
from keruta_actors.adapters import reactor
from keruta_actors.adapters.api_health import check_api, health_url
from keruta_actors.adapters.process_memory import measure
from keruta_actors.messages import Configure, MemoryMeasured, QueryMemory, WorkDone
from keruta_actors.policy.health import Check, Snapshot, memory_check, websocket_check

MIB = 1 << 20


class HealthChecker(KerutaActor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.configured: Configure | None = None
        self.checks: dict[str, Check] = {}
        self.replied_at: float | None = None
        self.checking_api = False

    def receiveMsg_Configure(self, message: Configure, sender) -> None:
        if self.configured is not None:
            return  # a repeated delivery
        self.configured = message
        self.health = message.settings.monitoring.health
        self.limit_bytes = message.settings.log_streaming.performance.memory_limit_mb * MIB
        self.url = health_url(message.settings.api.url)
        security = message.settings.websocket.security
        self.tls = (security.verify_cert, security.cert_path)
        self.worker = reactor.Worker(reactor.current(), self.myAddress, "keruta-health")
        self.replied_at = time.time()  # the agent has just started: alive until shown otherwise
        self.on_tick(time.monotonic())

    def on_tick(self, now: float) -> None:
        self.send(self.configured.supervisor, QueryMemory())
        if not self.checking_api:
            self.checking_api = True
            url, timeout, tls = self.url, self.health.timeout, self.tls
            self.worker.submit("api", lambda: check_api(url, timeout, *tls))
        self._publish()
        self.wake_at(now + self.health.interval)

    def receiveMsg_MemoryMeasured(self, message: MemoryMeasured, sender) -> None:
        self.replied_at = time.time()
        reading = message.reading
        if reading is None:  # the supervisor has not measured yet
            reading = measure(self.limit_bytes)
        self.checks["memory"] = memory_check(reading)
        self._publish()

    def receiveMsg_WorkDone(self, message: WorkDone, sender) -> None:
        if message.tag != "api":
            return
        self.checking_api = False
        result = message.result
        self.checks["api"] = result if isinstance(result, Check) else Check(False, "check failed", error=repr(result))
        self._publish()

    def on_exit(self) -> None:
        if self.configured is not None:
            self.worker.stop()

    def _publish(self) -> None:
        link, now = meter.current().link, time.time()
        self.checks["websocket"] = websocket_check(link.status, link.transport, link.down_since, now)
        meter.current().health = Snapshot(tuple(self.checks.items()), now, self.replied_at)
