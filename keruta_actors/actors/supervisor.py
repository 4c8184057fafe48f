"""The supervisor: builds the pipeline, restarts connections, ends the run.

    SourceReader -> Filter -> RateLimiter -> Batcher <-> Connection (WebSocket)
                                                     <-> RestConnection (fallback)

(The RateLimiter is there only when some rate is limited.)

It carries out the transport plan (policy/transport.py): a connection that
reports `LinkLost`, or whose actor dies, is retired and a fresh one started
after the reconnect policy's backoff; after `maxReconnectAttempts` failures
in a row REST takes over while the WebSocket is probed. Whichever connection
is in use, the batcher hands it every unconfirmed batch. Thespian failures
end up here too: `ChildActorExited` for any actor, `PoisonMessage` for
messages a stage failed on twice.

The run ends when the batcher reports everything delivered after the child
exited, or when `logStreaming.drainTimeout` passes first, or, once every
transport has failed for good, as soon as the input ends (what is left is in
the spool: waiting cannot deliver it). The supervisor then collects the run's
account (policy/accounting.py): the batcher's half (`DeliveryReport`), then
the reader's (`CloseInput` -> `InputAccount`, which also lets the spool go),
logs it, and the CLI hears `AgentFinished`.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import replace

from thespian.actors import ActorExitRequest, ChildActorExited, PoisonMessage

from keruta_actors import meter
from keruta_actors.actors.base import KerutaActor
from keruta_actors.actors.batcher import Batcher
from keruta_actors.actors.connection import Connection
from keruta_actors.actors.filter import Filter
from keruta_actors.actors.rate_limiter import RateLimiter, rate_limited
from keruta_actors.actors.source_reader import SourceReader
from keruta_actors.adapters.process_memory import measure, release_memory
from keruta_actors.messages import (
    AgentFinished,
    ChildFailedToStart,
    Chunk,
    CloseInput,
    Configure,
    Delivered,
    DeliveryReport,
    Drained,
    InputAccount,
    InputEnded,
    LinkLost,
    LinkUp,
    MemoryMeasured,
    QueryMemory,
    RelieveMemory,
    ReportDelivery,
    ShipAgentRecord,
    StartAgent,
    Terminate,
    UseConnection,
)
from keruta_actors.policy.accounting import account
from keruta_actors.policy.backoff import ReconnectPolicy
from keruta_actors.policy.memory import MemoryPolicy, Steady
from keruta_actors.policy.transport import (
    REST,
    WEBSOCKET,
    Action,
    Retire,
    Start,
    TransportPlan,
    Use,
)

# How often the whole agent's memory is measured (~5 ms a reading).
MEMORY_INTERVAL = 5.0
# How long the end-of-run account (batcher, then reader) may take.
ACCOUNT_TIMEOUT = 10.0
MIB = 1 << 20
# The REST connection is named, not imported: `requests` then loads only in
# its own process, once the fallback is needed (measured: importing it here
# cost every run 7 MB of PSS and start-up CPU).
CONNECTION_ACTORS = {WEBSOCKET: Connection, REST: "keruta_actors.actors.rest_connection.RestConnection"}


class Supervisor(KerutaActor):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started: StartAgent | None = None
        self.finished = False
        self.lost: Counter[tuple[str, str, str]] = Counter()  # records lost to failures, (namespace, source, reason)
        self.report: DeliveryReport | None = None  # the batcher's half of the account, once asked for
        self.asked_for_report = False
        self.account_deadline: float | None = None

    def receiveMsg_StartAgent(self, message: StartAgent, sender) -> None:
        if self.started is not None:
            return
        self.started = message
        self.cli = sender
        self.exit_code: int | None = None
        self.problem = ""
        self.problem_is_fatal = False
        self.link_generation = 0
        self.links: dict[str, tuple[int, object]] = {}  # kind -> (generation, actor address)
        self.drain_deadline: float | None = None
        self.memory = MemoryPolicy(message.settings.log_streaming.performance.memory_limit_mb * MIB)
        self.memory_due = time.monotonic() + MEMORY_INTERVAL
        self.wake_at(self.memory_due)
        websocket = message.settings.websocket
        rng = random.Random()
        self.transport = TransportPlan(
            ReconnectPolicy(
                initial=websocket.reconnect_interval,
                # 0 attempts: no reconnecting; REST takes over at the first failure.
                max_attempts=max(1, websocket.max_reconnect_attempts),
                cap=max(websocket.reconnect_interval, 60.0),
                rng=rng,
            ),
            rest_retry_interval=message.settings.api.retry_interval,
            rng=rng,
        )
        self.batcher = self._start_stage(Batcher, None)
        self.rate_limiter = None
        if rate_limited(message.settings.log_streaming.performance):
            self.rate_limiter = self._start_stage(RateLimiter, self.batcher)
        self.filter = self._start_stage(Filter, self.rate_limiter or self.batcher)
        self._carry_out(self.transport.start())
        self.reader = self._start_stage(SourceReader, self.filter)

    def receiveMsg_LinkUp(self, message: LinkUp, sender) -> None:
        kind = self._kind_of(message.generation)
        if kind is None or self.finished:
            return
        meter.current().link_up(kind)
        if kind == WEBSOCKET and (self.transport.websocket.attempts or REST in self.links):
            back = "; the REST fallback is retired" if REST in self.links else ""
            self.log.warning("connected to %s again%s", self.started.settings.websocket.url, back)
        elif kind == REST and self.transport.active != WEBSOCKET:
            api_url = self.started.settings.api.url
            self.log.warning("sending logs to the REST API at %s until the WebSocket is back", api_url)
        self._carry_out(self.transport.up(kind))

    def receiveMsg_LinkLost(self, message: LinkLost, sender) -> None:
        kind = self._kind_of(message.generation)
        if kind is not None:
            self._link_failed(kind, message.problem, message.fatal, message.unserved)

    def receiveMsg_ChildActorExited(self, message: ChildActorExited, sender) -> None:
        if self.finished:
            return
        kind = next((kind for kind, (_, address) in self.links.items() if address == message.childAddress), None)
        if kind is not None:
            self._link_failed(kind, f"the {kind} connection actor exited unexpectedly", fatal=False)
        elif message.childAddress in self._stages():
            self._finish(1, "an agent stage exited unexpectedly; records it held are lost")

    def receiveMsg_PoisonMessage(self, message: PoisonMessage, sender) -> None:
        lost = message.poisonMessage
        if isinstance(lost, Chunk):
            if lost.size:
                self.lost[(*lost.block.stream, "stage_failure")] += lost.size  # counted, never a silent drop
            meter.current().not_shipped((("stage_failure", lost.size),))
            self.log.error("a stage failed twice on a chunk; %d records were not shipped", lost.size)
        else:
            self.log.error("an actor failed twice on %s", type(lost).__name__)

    def receiveMsg_ChildFailedToStart(self, message: ChildFailedToStart, sender) -> None:
        self._finish(message.exit_code, message.problem)

    def receiveMsg_QueryMemory(self, message: QueryMemory, sender) -> None:
        self.send(sender, MemoryMeasured(self.memory.last if self.started is not None else None))

    def receiveMsg_ShipAgentRecord(self, message: ShipAgentRecord, sender) -> None:
        if self.started is not None:
            self.send(self.reader, message)

    def receiveMsg_InputEnded(self, message: InputEnded, sender) -> None:
        self.exit_code = message.exit_code
        if self.transport.all_dead:
            self._ask_for_report()  # no transport is left to wait for
            return
        self.drain_deadline = time.monotonic() + self.started.settings.log_streaming.drain_timeout
        self.wake_at(self.drain_deadline)

    def receiveMsg_Delivered(self, message: Delivered, sender) -> None:
        self.send(self.reader, message)

    def receiveMsg_Drained(self, message: Drained, sender) -> None:
        self._ask_for_report()

    def receiveMsg_Terminate(self, message: Terminate, sender) -> None:
        if self.started is not None:
            self.send(self.reader, message)

    def receiveMsg_DeliveryReport(self, message: DeliveryReport, sender) -> None:
        if self.report is not None or self.finished:
            return
        self.report = message
        self.send(self.reader, CloseInput(message.watermarks))

    def receiveMsg_InputAccount(self, message: InputAccount, sender) -> None:
        report = self.report
        if report is None or self.finished:
            return
        accounts = account(
            read=dict(message.read),
            from_spool=dict(message.from_spool),
            delivered=dict(report.delivered_by_stream),
            not_shipped=dict(Counter(dict(report.not_shipped)) + self.lost),
            # what the spool holds less what was done with above the watermark
            left=dict(Counter(dict(message.left)) - Counter(dict(report.done_above))),
            labels=dict(message.labels),
            spool_usable=bool(message.spool) and not message.problem,
        )
        self._finish(self.exit_code if self.exit_code is not None else 1,
                     self._undelivered_problem(accounts, message), report, accounts, message.spool)

    def _undelivered_problem(self, accounts, closed: InputAccount) -> str:
        left = sum(a.left for a in accounts)
        lost = sum(a.lost for a in accounts)
        if not left and not lost:
            return ""
        reason = self.problem or "the keruta API did not confirm them in time"
        problem = f"{left + lost} records were not delivered: {reason}"
        if left:
            task = self.started.plan.task_id
            problem += (f"; {left} are kept in the spool {closed.spool}: `keruta-actors spool flush --task-id {task}`"
                        f" or the next `start --task-id {task}` sends them")
        if lost:
            problem += f"; {lost} are lost ({closed.problem or 'the spool is off'})"
        return problem

    def _ask_for_report(self) -> None:
        if not self.asked_for_report:
            self.asked_for_report = True
            self.drain_deadline = None
            # the account takes two messages; a stage failing on them must not keep the agent running
            self.account_deadline = time.monotonic() + ACCOUNT_TIMEOUT
            self.wake_at(self.account_deadline)
            self.send(self.batcher, ReportDelivery())

    def on_tick(self, now: float) -> None:
        if self.finished:
            return
        self._carry_out(self.transport.tick(now))
        if self.drain_deadline is not None and now >= self.drain_deadline:
            self._ask_for_report()
        if self.account_deadline is not None and now >= self.account_deadline:
            self.log.error("the run's account did not come within %.0fs; ending without it", ACCOUNT_TIMEOUT)
            self._finish(self.exit_code if self.exit_code is not None else 1,
                         "the run ended without its account: an agent stage failed at the end (see the log); "
                         "what was not delivered is in the spool")
        if now >= self.memory_due:
            self._watch_memory()
            self.memory_due = now + MEMORY_INTERVAL
        self._wake_when_due()

    # -- helpers -------------------------------------------------------------------

    def _watch_memory(self) -> None:
        """Measure the agent; near the limit, have every stage give memory back."""
        reading = measure(self.memory.limit_bytes)
        meter.current().memory(reading)
        decision = self.memory.observe(reading)
        if isinstance(decision, Steady):
            return
        self.log.warning("memory: %s; releasing memory and shrinking buffers", reading.describe())
        connections = [address for _, address in self.links.values()]
        for stage in (*self._stages(), *connections):
            self.send(stage, RelieveMemory())
        release_memory()

    def _stages(self) -> list:
        return [stage for stage in (self.reader, self.filter, self.rate_limiter, self.batcher) if stage is not None]

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

    def _kind_of(self, generation: int) -> str | None:
        """Which transport's current connection has this generation; None
        for a connection already retired (its late reports are stale)."""
        return next((kind for kind, (known, _) in self.links.items() if known == generation), None)

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Start):
                self.link_generation += 1
                meter.current().link_started(action.kind)
                address = self.createActor(CONNECTION_ACTORS[action.kind])
                self.links[action.kind] = (self.link_generation, address)
                self.send(address, self._configure(self.batcher))
            elif isinstance(action, Use):
                address = self.links[action.kind][1] if action.kind is not None else None
                meter.current().using(action.kind)
                self.send(self.batcher, UseConnection(address))
            elif isinstance(action, Retire):
                self._retire(action.kind)
        self._wake_when_due()

    def _retire(self, kind: str) -> None:
        _, address = self.links.pop(kind, (0, None))
        if address is not None:
            self.send(address, ActorExitRequest())

    def _wake_when_due(self) -> None:
        dues = (self.transport.next_due(), self.drain_deadline, self.memory_due, self.account_deadline)
        self.wake_at(min(due for due in dues if due is not None))

    def _link_failed(self, kind: str, problem: str, fatal: bool, unserved: bool = False) -> None:
        self._retire(kind)
        meter.current().link_lost(kind, fatal, unserved)
        if fatal or not self.problem_is_fatal:  # the run's summary names what retrying cannot fix
            self.problem, self.problem_is_fatal = problem, fatal
        now = time.monotonic()
        was_falling_back = self.transport.falling_back
        actions = self.transport.lost(kind, now, fatal, unserved)
        self._report_failure(kind, problem, fatal, now, was_falling_back, unserved)
        self._carry_out(actions)
        if self.transport.all_dead and not self.asked_for_report:
            self.log.error("no transport is left (the WebSocket and the REST API failed for good); "
                           "what is read goes to the spool, and the agent exits when the input ends")
            if self.exit_code is not None:  # the input has ended: nothing to wait for
                self._ask_for_report()

    def _report_failure(
        self, kind: str, problem: str, fatal: bool, now: float, was_falling_back: bool, unserved: bool
    ) -> None:
        if fatal:
            rest = "; sending to the REST API instead" if kind == WEBSOCKET and REST not in self.transport.dead else ""
            self.log.error("%s; not retrying%s", problem, rest)
            return
        retry_in = self.transport.due[kind] - now
        if kind == REST:
            self.log.error("the REST API failed: %s; trying it again in %.1fs", problem, retry_in)
        elif was_falling_back:
            self.log.info("the WebSocket is still down: %s; next probe in %.1fs", problem, retry_in)
        elif unserved:
            self.log.warning(
                "%s: the server has no log WebSocket there; switching to the REST API, "
                "probing the WebSocket again in %.1fs", problem, retry_in,
            )
        elif self.transport.falling_back:
            self.log.error(
                "%s (%d failures in a row); switching to the REST API, probing the WebSocket again in %.1fs",
                problem, self.transport.websocket.attempts, retry_in,
            )
        else:
            self.log.warning("%s; retrying in %.1fs", problem, retry_in)

    def _finish(self, exit_code: int, problem: str, report: DeliveryReport | None = None,
                accounts: tuple = (), spool: str = "") -> None:
        if self.finished:
            return
        self.finished = True
        undelivered = sum(a.left + a.lost + a.unaccounted for a in accounts)
        if report is not None:
            lost_by_reason: Counter[str] = Counter()
            for (_, _, reason), count in self.lost.items():
                lost_by_reason[reason] += count
            report = replace(report, filtered=dict(Counter(report.filtered) + lost_by_reason))
            not_shipped = ", ".join(f"{reason} {count}" for reason, count in sorted(report.filtered.items()))
            self.log.info(
                "run finished: %d records delivered, %d not delivered; not shipped, by reason: %s; by stream: %s",
                report.delivered, undelivered, not_shipped or "none",
                "; ".join(a.describe() for a in accounts) or "nothing read",
            )
        self.send(
            self.cli,
            AgentFinished(
                exit_code=exit_code,
                delivered=report.delivered if report else 0,
                undelivered=undelivered,
                filtered=report.filtered if report else {},
                problem=problem,
                account=accounts,
                spool=spool,
            ),
        )
