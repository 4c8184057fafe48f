"""Every message the actors exchange, in one place.

The flow (each arrow is a Thespian send; the README's design section has the
measurements behind it):

    CLI --StartAgent--> Supervisor --Configure*--> every stage
    SourceReader --Chunk--> Filter --Chunk--> RateLimiter --Chunk--> Batcher
    Batcher --Batches--> Connection --(WebSocket)--> keruta API
                     or RestConnection --(HTTP POST)--> keruta API (fallback)
    Connection --BatchesAcked--> Batcher --Drained--> Supervisor --AgentFinished--> CLI
    SourceReader --InputEnded--> Supervisor
    Supervisor --CloseInput--> SourceReader --InputAccount--> Supervisor   (the run's account)
    AlertEvaluator --ShipAgentRecord--> Supervisor --> SourceReader (then down the pipeline)
    HealthChecker --QueryMemory--> Supervisor --MemoryMeasured--> HealthChecker

Rules every type here keeps:
- frozen, slotted dataclasses with plain, pickle-able fields (Thespian drops
  an unpicklable message silently on the TCP base; a test round-trips each);
- data messages carry a chunk of records, never one line: a hop costs ~1 ms of
  CPU per message whatever its size;
- messages that carry records have an O(1) `repr`, because Thespian formats
  every message it sends;
- facts are named in the past tense, commands in the imperative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- Set-up and shutdown ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What this agent run streams, decided by the CLI."""

    task_id: str
    run_id: str
    command: tuple[str, ...]  # empty when only other sources are read
    script_path: str = ""
    hostname: str = ""
    agent_version: str = ""
    sources: tuple[str, ...] = ()  # "stdin", "file:PATH": read besides the child
    cli_pid: int = 0  # the process the agent was started as
    env: tuple[tuple[str, str], ...] = ()  # set in the command's environment
    work_dir: str = ""  # the command's working directory; "" = the agent's


@dataclass(frozen=True, slots=True)
class StartAgent:
    """CLI -> Supervisor: build the pipeline and run the plan."""

    settings: Any  # config.Settings
    plan: RunPlan


@dataclass(frozen=True, slots=True)
class Configure:
    """Supervisor -> a stage. `createActor` takes no arguments, so every actor
    learns its settings, its neighbours and its supervisor from this."""

    settings: Any  # config.Settings
    plan: RunPlan
    supervisor: Any  # ActorAddress
    downstream: Any = None  # ActorAddress of the next stage, if any
    generation: int = 0  # which incarnation of a restartable actor this is


@dataclass(frozen=True, slots=True)
class Terminate:
    """CLI -> Supervisor -> SourceReader: a signal arrived; pass it to the child."""

    signum: int


@dataclass(frozen=True, slots=True)
class AgentFinished:
    """Supervisor -> CLI: the run is over and the agent may exit."""

    exit_code: int
    delivered: int
    undelivered: int
    filtered: dict[str, int] = field(default_factory=dict)
    problem: str = ""  # one line for the user when the run did not go as planned
    account: tuple = ()  # policy.accounting.StreamAccount per stream (empty if the run ended early)
    spool: str = ""  # the task's spool directory ("" without one)


# --- Records flowing down the pipeline -----------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class Chunk:
    """Records on their way down the pipeline. `final` marks the last chunk a
    stage will ever send: every source is closed and the child has exited."""

    seq: int
    block: Any  # records.RecordBlock of one stream, or None when the chunk carries none
    final: bool = False
    # (((namespace, source, reason), count), ...): records not shipped on purpose upstream of here
    not_shipped: tuple = ()
    # (((namespace, source), line), ...): every line of the stream up to there
    # is in this chunk or an earlier one, or was not shipped (policy/flow.py)
    through: tuple = ()
    # (((namespace, source), array of line numbers), ...): the lines not_shipped counts
    dropped: tuple = ()

    @property
    def size(self) -> int:
        return len(self.block) if self.block is not None else 0

    def __repr__(self) -> str:
        return f"Chunk(seq={self.seq}, n={self.size}, final={self.final})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class ChunkAccepted:
    """A stage -> its upstream: chunk `seq` is taken care of; send another.
    This is the credit that bounds how many chunks are in flight per hop."""

    seq: int


@dataclass(frozen=True, slots=True, repr=False)
class Batches:
    """Batcher -> Connection: wire batches, each ((batch_id, RecordBlock), ...).
    Many batches ride in one message so the hop cost is shared. `seq` counts
    the messages to one connection from 1, so it can send them in order."""

    seq: int
    batches: tuple

    def __repr__(self) -> str:
        return f"Batches(seq={self.seq}, n={len(self.batches)})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class BatchesAcked:
    """Connection -> Batcher: these batches are done with. The server stored
    every record in them except those `rejected` counts, ((batch_id, n), ...),
    which it refused for good (REST answers such as HTTP 400)."""

    batch_ids: tuple[int, ...]
    rejected: tuple[tuple[int, int], ...] = ()


# --- The child process ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputEnded:
    """SourceReader -> Supervisor: every source is read to its end (the child
    exited and its pipes are drained, or there is no child and the input
    closed or a signal asked to stop); the final chunk is on its way."""

    exit_code: int  # the child's, or 0 without one
    lines_read: int


@dataclass(frozen=True, slots=True)
class CloseInput:
    """Supervisor -> SourceReader: the run is ending. Confirm the final
    watermarks (as in Delivered), stop the child if it still runs, let the
    spool go and answer with InputAccount."""

    progress: tuple = ()


@dataclass(frozen=True, slots=True)
class InputAccount:
    """SourceReader -> Supervisor: the reader's half of the run's account,
    per stream ((namespace, source), records): read this run, held by the
    spool when it was opened (left by an earlier run), held by it now.
    `labels` name the streams for people ((namespace, source), "stdout").
    `spool` is the spool's directory ("" without one); `problem` the line
    about the spool failing, if it did."""

    read: tuple = ()
    from_spool: tuple = ()
    left: tuple = ()
    labels: tuple = ()
    spool: str = ""
    problem: str = ""


@dataclass(frozen=True, slots=True)
class ChildFailedToStart:
    """SourceReader -> Supervisor: the command could not be run at all."""

    problem: str
    exit_code: int  # 127 not found, 126 not executable


# --- The link to the keruta API -------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkUp:
    """Connection -> Supervisor: connected (and authenticated)."""

    generation: int
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LinkLost:
    """Connection -> Supervisor: this connection is finished. `fatal` means
    retrying cannot help (for example the server refused our credentials);
    `unserved` that the server is up but serves no WebSocket there."""

    generation: int
    problem: str
    fatal: bool = False
    unserved: bool = False


@dataclass(frozen=True, slots=True)
class UseConnection:
    """Supervisor -> Batcher: send batches here from now on, starting with
    every batch not yet acknowledged (same ids, so the receiver deduplicates)."""

    connection: Any  # ActorAddress, or None while there is no link


@dataclass(frozen=True, slots=True)
class Drained:
    """Batcher -> Supervisor: the final chunk arrived and everything before it
    is acknowledged."""

    delivered: int


@dataclass(frozen=True, slots=True)
class Delivered:
    """Batcher -> Supervisor -> SourceReader: per stream, its watermark: every
    record up to that line is confirmed by the server or was not shipped on
    purpose. The spool forgets them; a tailed file commits its offset."""

    progress: tuple[tuple[tuple[str, str], int], ...]  # (((namespace, source), line), ...)


@dataclass(frozen=True, slots=True)
class ReportDelivery:
    """Supervisor -> Batcher: say how far delivery got (at the drain timeout)."""


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """Batcher -> Supervisor: the answer to ReportDelivery. `filtered` counts
    records not shipped by reason; the per-stream fields are for the run's
    account (policy/accounting.py)."""

    delivered: int
    undelivered: int
    filtered: dict[str, int]
    delivered_by_stream: tuple = ()  # (((namespace, source), records), ...)
    not_shipped: tuple = ()  # (((namespace, source, reason), records), ...)
    watermarks: tuple = ()  # (((namespace, source), line), ...): as in Delivered
    # (((namespace, source), records), ...): done with above the watermark
    # (acknowledged out of order, or not shipped), though still in the spool
    done_above: tuple = ()


# --- The agent's own records -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShipAgentRecord:
    """AlertEvaluator -> Supervisor -> SourceReader: ship a record of the
    agent's own (source `agent`) on the task's stream, like a line read."""

    level: str  # DEBUG, INFO, WARN or ERROR
    message: str
    metadata: tuple[tuple[str, Any], ...] = ()  # besides the agent's shared metadata


# --- Memory ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelieveMemory:
    """Supervisor -> every stage: the agent is near `memoryLimitMB`; collect
    garbage, give memory back, and shrink buffers to their base size."""


@dataclass(frozen=True, slots=True)
class QueryMemory:
    """Anyone -> Supervisor: what did the last memory reading say?"""


@dataclass(frozen=True, slots=True)
class MemoryMeasured:
    """Supervisor -> the asker: the last reading of the whole agent (None
    before the first), for the health check."""

    reading: Any  # policy.memory.MemoryReading


# --- Timers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FdsReady:
    """Reactor -> an actor: descriptors it watches are ready (adapters/reactor.py)."""

    readable: tuple[int, ...]
    writable: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, repr=False)
class WorkDone:
    """Reactor -> an actor: a job its worker thread ran has finished with
    `result` (the job's return value, or the exception it raised)."""

    tag: str
    result: Any

    def __repr__(self) -> str:
        return f"WorkDone({self.tag})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Tick:
    """Wakeup payload. Wakeups cannot be cancelled, so each carries the
    generation of the timer that asked for it, and stale ones are ignored."""

    generation: int
    purpose: str = "tick"
