"""The agent's monitoring side, started beside the supervisor (SPEC §8).

With `monitoring.enabled` (the default):
- the meter (meter.py), installed for the process, which every actor counts
  through;
- the health checker and the alert evaluator actors;
- with `monitoring.prometheus.enabled`, an HTTP server on
  `monitoring.bindAddress`:`monitoring.prometheus.port` with
      GET /metrics   the Prometheus text format (OpenMetrics if asked for)
      GET /health    the design document's report, 200 or 503
      GET /livez     whether the agent's actors answer, 200 or 503

With `debug.enabled`: tracemalloc, and on 127.0.0.1:`debug.pprof.port`
(`debug.pprof.enabled`, loopback whatever `bindAddress` says)
      POST /debug/gc, GET /debug/pprof/heap,
      GET /debug/pprof/profile?seconds=N, GET /debug/pprof/trace?seconds=N
and with `debug.trace.enabled` the message flow written to
`debug.trace.output` (adapters/message_trace.py).

Servers run on threads of their own and read only the registry and the
health snapshot. A port that cannot be bound is reported in the agent's log
and the run goes on: monitoring never stands in the way of the logs.

What is not configured is not even imported: with monitoring and debugging
off, a run loads none of it.
"""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING

from keruta_actors import meter
from keruta_actors.messages import Configure

if TYPE_CHECKING:  # imported when configured, below
    from keruta_actors.adapters import message_trace
    from keruta_actors.adapters.http_server import HttpServer

log = logging.getLogger("keruta_actors.monitoring")
MIB = 1 << 20
DEBUG_HOST = "127.0.0.1"
MAX_SECONDS = 300.0
TRACEMALLOC_FRAMES = 1


class Monitoring:
    def __init__(self) -> None:
        self.servers: list[HttpServer] = []
        self.trace_file: message_trace.FileSink | None = None

    @classmethod
    def start(cls, system, settings, plan, supervisor) -> "Monitoring":
        """Everything the settings ask for; `close` undoes it."""
        started = cls()
        monitoring = settings.monitoring
        if monitoring.enabled:
            from prometheus_client import CollectorRegistry

            from keruta_actors.actors.alert_evaluator import AlertEvaluator
            from keruta_actors.actors.health_checker import HealthChecker
            from keruta_actors.agent_meter import Meter

            limit = settings.log_streaming.performance.memory_limit_mb * MIB
            agent_meter = Meter(CollectorRegistry(), plan.task_id, monitoring.metrics, limit, time.time())
            meter.install(agent_meter)
            for actor_class in (HealthChecker, AlertEvaluator):
                system.tell(system.createActor(actor_class), Configure(settings, plan, supervisor))
            if monitoring.prometheus.enabled:
                started._serve("keruta-monitoring", monitoring.bind_address, monitoring.prometheus.port,
                               monitoring_routes(agent_meter, monitoring.health.liveness_timeout))
        if settings.debug.enabled:
            started._start_debugging(settings.debug)
        return started

    def close(self) -> None:
        for server in self.servers:
            server.close()
        if self.trace_file is not None:
            self.trace_file.close()
        if tracemalloc.is_tracing():
            tracemalloc.stop()
        meter.uninstall()

    def _serve(self, name: str, host: str, port: int, routes) -> None:
        from keruta_actors.adapters.http_server import HttpServer

        try:
            server = HttpServer(name, host, port, routes).start()
        except OSError as error:
            log.error("cannot serve %s on %s:%d: %s; the run goes on without it", name, host, port, error)
            return
        self.servers.append(server)
        log.info("%s: http://%s:%d%s", name, host, server.address[1], "".join(
            f" {path}" for path in sorted({path for _, path in routes})))

    def _start_debugging(self, debug) -> None:
        from keruta_actors.adapters import message_trace

        message_trace.install()
        if debug.trace.enabled:
            try:
                self.trace_file = message_trace.FileSink(debug.trace.output)
                message_trace.add_sink(self.trace_file)
            except OSError as error:
                log.error("cannot write the message trace to %s: %s", debug.trace.output, error)
        if debug.pprof.enabled:
            tracemalloc.start(TRACEMALLOC_FRAMES)
            self._serve("keruta-debug", DEBUG_HOST, debug.pprof.port, debug_routes(threading.get_ident()))


def monitoring_routes(agent_meter, stale_after: float) -> dict:
    """`agent_meter`: the agent_meter.Meter whose registry and snapshot are served."""
    from prometheus_client.exposition import choose_encoder

    from keruta_actors.adapters.http_server import Answer

    def metrics(query, headers) -> Answer:
        encoder, content_type = choose_encoder(headers.get("Accept", ""))
        return Answer(200, encoder(agent_meter.registry), content_type)

    def health(query, headers) -> Answer:
        return Answer.json(*agent_meter.health.health(time.time(), stale_after))

    def livez(query, headers) -> Answer:
        return Answer.json(*agent_meter.health.liveness(time.time(), stale_after))

    return {("GET", "/metrics"): metrics, ("GET", "/health"): health, ("GET", "/livez"): livez}


def debug_routes(loop_thread: int) -> dict:
    """`loop_thread`: the thread the actors run on, which a profile samples."""
    from keruta_actors.adapters import message_trace, profiling
    from keruta_actors.adapters.http_server import Answer

    def gc(query, headers) -> Answer:
        return Answer.json(200, profiling.collect_garbage())

    def heap(query, headers) -> Answer:
        return Answer(200, profiling.heap_top(int(query.get("top", 25))).encode())

    def profile(query, headers) -> Answer:
        return Answer(200, profiling.sample_stacks(loop_thread, _seconds(query, 30.0)).encode())

    def trace(query, headers) -> Answer:
        return Answer.json(200, message_trace.collect(_seconds(query, 1.0)))

    return {("POST", "/debug/gc"): gc, ("GET", "/debug/pprof/heap"): heap,
            ("GET", "/debug/pprof/profile"): profile, ("GET", "/debug/pprof/trace"): trace}


def _seconds(query, default: float) -> float:
    """`?seconds=N`, as Go's pprof takes it; bounded, so a request cannot hold a thread for good."""
    try:
        seconds = float(query.get("seconds", default))
    except ValueError:
        seconds = default
    return min(max(seconds, 0.1), MAX_SECONDS)
