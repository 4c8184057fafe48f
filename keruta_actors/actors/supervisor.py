"""The supervisor: builds the pipeline, restarts connections, ends the run.

    SourceReader -> Filter -> RateLimiter -> Batcher <-> Connection

It owns the reconnect policy: a connection that reports `LinkLost`, or whose
actor dies, is retired and a fresh one is started after the policy's backoff;
the batcher then hands the new connection every unconfirmed batch. Thespian
failures end up here too: `ChildActorExited` for any actor, `PoisonMessage`
for messages a stage failed on twice.

The run ends when the batcher reports everything delivered after the child
exited, or when `logStreaming.drainTimeout` passes first; the CLI then hears
`AgentFinished`.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from dataclasses import replace

from thespian.actors import ActorExitRequest, ChildActorExited, PoisonMessage

from keruta_actors.actors.base import KerutaActor
from keruta_actors.actors.batcher import Batcher
from keruta_actors.actors.connection import Connection
from keruta_actors.actors.filter import Filter
from keruta_actors.actors.rate_limiter import RateLimiter
from keruta_actors.actors.source_reader import SourceReader
from keruta_actors.adapters.process_memory import measure, release_memory
from keruta_actors.messages import (
    AgentFinished,
    ChildFailedToStart,
    ChildStarted,
    Chunk,
    Configure,
    Delivered,
    DeliveryReport,
    Drained,
    InputEnded,
    LinkLost,
    LinkUp,
    MemoryMeasured,
    QueryMemory,
    RelieveMemory,
    ReportDelivery,
    StartAgent,
    Terminate,
    UseConnection,
)
from keruta_actors.policy.backoff import GiveUp, ReconnectPolicy
from keruta_actors.policy.memory import MemoryPolicy, Steady

# How often the whole agent's memory is measured (~5 ms a reading).
MEMORY_INTERVAL = 5.0
MIB = 1 << 20


class Supervisor(KerutaActor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: StartAgent | None = None
        self.finished = False
        self.lost: Counter[str] = Counter()  # records lost to failures, by reason

    def receiveMsg_StartAgent(self, message: StartAgent, sender) -> None:
        if self.started is not None:
            return
        self.started = message
        self.cli = sender
        self.exit_code: int | None = None
        self.problem = ""
        self.link_generation = 0
        self.connection = None
        self.reconnect_due: float | None = None
        self.drain_deadline: float | None = None
        self.script_pids: list[int] = []
        self.memory = MemoryPolicy(message.settings.log_streaming.performance.memory_limit_mb * MIB)
        self.memory_due = time.monotonic() + MEMORY_INTERVAL
        self.wake_at(self.memory_due)
        websocket = message.settings.websocket
        self.reconnect = ReconnectPolicy(
            initial=websocket.reconnect_interval,
            max_attempts=websocket.max_reconnect_attempts,
            cap=max(websocket.reconnect_interval, 60.0),
            rng=random.Random(),
        )
        self.batcher = self._start_stage(Batcher, None)
        self.rate_limiter = self._start_stage(RateLimiter, self.batcher)
        self.filter = self._start_stage(Filter, self.rate_limiter)
        self._connect()
        self.reader = self._start_stage(SourceReader, self.filter)

    def receiveMsg_LinkUp(self, message: LinkUp, sender) -> None:
        if message.generation != self.link_generation or self.finished:
            return
        if self.reconnect.attempts:
            self.log.warning("connected to %s again", self.started.settings.websocket.url)
        self.reconnect.succeeded()
        self.send(self.batcher, UseConnection(self.connection))

    def receiveMsg_LinkLost(self, message: LinkLost, sender) -> None:
        if message.generation == self.link_generation:
            self._link_failed(message.problem, message.fatal)

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender) -> None:
        if self.finished:
            return
        if message.childAddress == self.connection:
            self._link_failed("the connection actor exited unexpectedly", fatal=False)
        elif message.childAddress in (self.reader, self.filter, self.rate_limiter, self.batcher):
            self._finish(1, "an agent stage exited unexpectedly; records it held are lost")

    def receiveMsg_PoisonMessage(self, message: PoisonMessage, sender) -> None:
        lost = message.poisonMessage
        if isinstance(lost, Chunk):
            self.lost["stage_failure"] += lost.size  # counted, never a silent drop
            self.log.error("a stage failed twice on a chunk; %d records were not shipped", lost.size)
        else:
            self.log.error("an actor failed twice on %s", type(lost).__name__)

    def receiveMsg_ChildFailedToStart(self, message: ChildFailedToStart, sender) -> None:
        self._finish(message.exit_code, message.problem)

    def receiveMsg_ChildStarted(self, message: ChildStarted, sender) -> None:
        self.script_pids.append(message.pid)

    def receiveMsg_QueryMemory(self, message: QueryMemory, sender) -> None:
        self.send(sender, MemoryMeasured(self.memory.last if self.started is not None else None))

    def receiveMsg_InputEnded(self, message: InputEnded, sender) -> None:
        self.exit_code = message.exit_code
        self.drain_deadline = time.monotonic() + self.started.settings.log_streaming.drain_timeout
        self.wake_at(self.drain_deadline)

    def receiveMsg_Delivered(self, message: Delivered, sender) -> None:
        self.send(self.reader, message)

    def receiveMsg_Drained(self, message: Drained, sender) -> None:
        self.send(self.batcher, ReportDelivery())

    def receiveMsg_Terminate(self, message: Terminate, sender) -> None:
        if self.started is not None:
            self.send(self.reader, message)

    def receiveMsg_DeliveryReport(self, message: DeliveryReport, sender) -> None:
        problem = ""
        if message.undelivered:
            reason = self.problem or "the keruta API did not confirm them in time"
            problem = f"{message.undelivered} records were not delivered: {reason}"
        self._finish(self.exit_code if self.exit_code is not None else 1, problem, message)

    def on_tick(self, now: float) -> None:
        if self.finished:
            return
        if self.reconnect_due is not None and now >= self.reconnect_due:
            self.reconnect_due = None
            self._connect()
        if self.drain_deadline is not None and now >= self.drain_deadline:
            self.drain_deadline = None
            self.send(self.batcher, ReportDelivery())
        if now >= self.memory_due:
            self._watch_memory()
            self.memory_due = now + MEMORY_INTERVAL
        self.wake_at(min(due for due in (self.reconnect_due, self.drain_deadline, self.memory_due) if due is not None))

    # -- helpers -------------------------------------------------------------------

    def _watch_memory(self) -> None:
        """Measure the whole agent; near the limit, have every stage give
        memory back. The admin is this actor's parent (see process_memory)."""
        limit = self.memory.limit_bytes
        reading = measure(self.started.plan.cli_pid, os.getppid(), self.script_pids, limit)
        decision = self.memory.observe(reading)
        if isinstance(decision, Steady):
            return
        self.log.warning("memory: %s; releasing memory and shrinking buffers", reading.describe())
        for stage in (self.reader, self.filter, self.rate_limiter, self.batcher, self.connection):
            if stage is not None:
                self.send(stage, RelieveMemory())
        release_memory()

    def _start_stage(self, actor_class, downstream):
        address = self.createActor(actor_class)
        self.send(address, self._configure(downstream))
        return address

    def _configure(self, downstream) -> Configure:
        return Configure(
            settings=self.started.settings,
            plan=self.started.plan,
            supervisor=self.myAddress,
            downstream=downstream,
            generation=self.link_generation,
        )

    def _connect(self) -> None:
        self.link_generation += 1
        self.connection = self.createActor(Connection)
        self.send(self.connection, self._configure(self.batcher))

    def _link_failed(self, problem: str, fatal: bool) -> None:
        self.send(self.batcher, UseConnection(None))
        if self.connection is not None:
            self.send(self.connection, ActorExitRequest())
            self.connection = None
        self.link_generation += 1  # late reports from the retired connection are stale
        self.problem = problem
        if fatal:
            self.log.error("%s; not retrying", problem)
            return
        now = time.monotonic()
        decision = self.reconnect.failed(now)
        due = decision.probe_at if isinstance(decision, GiveUp) else decision.when
        if self.reconnect.exhausted:
            self.log.error("%s (%d failures in a row); next try in %.1fs", problem, self.reconnect.attempts, due - now)
        else:
            self.log.warning("%s; retrying in %.1fs", problem, due - now)
        self.reconnect_due = due
        self.wake_at(due)

    def _finish(self, exit_code: int, problem: str, report: DeliveryReport | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        if report is not None:
            report = replace(report, filtered=dict(Counter(report.filtered) + self.lost))
            not_shipped = ", ".join(f"{reason} {count}" for reason, count in sorted(report.filtered.items()))
            self.log.info(
                "run finished: %d records delivered, %d not delivered; not shipped, by reason: %s",
                report.delivered, report.undelivered, not_shipped or "none",
            )
        self.send(
            self.cli,
            AgentFinished(
                exit_code=exit_code,
                delivered=report.delivered if report else 0,
                undelivered=report.undelivered if report else 0,
                filtered=report.filtered if report else {},
                problem=problem,
            ),
        )
