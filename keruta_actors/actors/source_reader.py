"""The source-reader stage: runs the child and turns its output, and any other
source's bytes, into records.

Every source is a stream with its own line numbering and id namespace: the
child's stdout and stderr, the agent's stdin (`--source stdin`) and tailed
files (`--source file:PATH`). Pipes are read when the reactor reports them
readable; files are polled on the tick. The child's output is also echoed to
the agent's own stdout/stderr, so `kubectl logs` still shows the script.

Every block read is appended to the task's write-ahead spool before it goes
anywhere (adapters/write_ahead.py): it goes on from memory while the pipeline
has room, and is read back from the spool later when it has not. So a slow
transport or a rate limit never holds the child back; only a full spool
does, and then nothing is read (the child blocks on its pipe). While the
outbox lingers the pipes gather lines for one read. Without a spool (it is
off, or failed) nothing is read while the next stage is congested.

Ids and line numbers carry on from the spool: the child's streams are
namespaced by the spool's run id, kept across restarts, and records an
earlier run left in the spool are sent first.

The input ends when the child has exited and its pipes are drained (other
sources get one last read), or, without a child, when stdin ends (and no
file is tailed) or a signal asks the agent to stop; the supervisor then hears
`InputEnded`. The final chunk goes down the pipeline once everything waiting
in the spool has followed.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import time
from dataclasses import dataclass

from keruta_actors import meter
from keruta_actors.actors.stage import Stage
from keruta_actors.adapters import reactor
from keruta_actors.adapters.child_process import ChildProcess
from keruta_actors.adapters.inputs import Pipe, TailedFile, agent_stdin, offsets_file
from keruta_actors.adapters.write_ahead import WriteAhead
from keruta_actors.agent_records import AgentRecords
from keruta_actors.errors import ChildStartError
from keruta_actors.messages import (
    ChildFailedToStart,
    CloseInput,
    Configure,
    Delivered,
    InputAccount,
    InputEnded,
    ShipAgentRecord,
    Terminate,
    WorkDone,
)
from keruta_actors.policy.filters import SecretMasker, credentials
from keruta_actors.policy.levels import default_level, detect_level
from keruta_actors.policy.lines import LineSplitter
from keruta_actors.records import SOURCES, RecordBlock

# How often to look at the child and poll files. A pipe says by itself when
# data comes and when it ends, so while only pipes are open and none has
# ended the reader looks seldom: an idle agent then costs almost nothing.
POLL_INTERVAL = 0.1
IDLE_POLL_INTERVAL = 1.0
# After the child exits, how long its pipes may stay open and silent (a
# grandchild still holds them) before the reader stops waiting for EOF.
PIPE_GRACE = 2.0
ECHO_FD = {"stdout": 1, "stderr": 2}


@dataclass(slots=True)
class Stream:
    """One source and what the reader keeps for it."""

    source: Pipe | TailedFile
    wire_source: str  # "stdout" | "stderr": the record's `source`
    namespace: str  # the id prefix: distinct per stream
    shared: tuple  # the metadata of its records, per SOURCES code
    splitter: LineSplitter
    default_level: str
    echo_fd: int | None = None
    line_number: int = 0
    ended: bool = False
    label: str = ""  # for people: stdout, stderr, stdin, file:PATH


class SourceReader(Stage):
    # Every chunk costs the pipeline a fixed overhead (~1 ms of CPU through
    # every stage, the wire frame and its ack), so a child printing a steady
    # trickle of lines would spend the agent's CPU on it. After a chunk the
    # reader rests for the linger and then reads every pipe at once: one
    # chunk per 15 ms while lines keep coming, each line waiting at most that
    # long; a line after a quiet spell still goes at once. Measured (README):
    # at 2,000 lines/s paced, 5 ms cost 62 µs of CPU a line and 15 ms 40 µs;
    # at 1,000 lines/s p99 latency is about the linger (16 ms at 15 ms).
    LINGER = 0.015

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.streams: list[Stream] = []
        self.child: ChildProcess | None = None
        self.wal: WriteAhead | None = None
        self.started = False
        self.input_ended = False  # every source is read to its end
        self.finished = False  # the final chunk is sent
        self.closed = False  # the run is over (CloseInput)
        self.stop_requested = False
        self.watched: tuple[int, ...] = ()
        self.gathering = False  # reading every pipe at once: cut after the last
        self.agent_records: AgentRecords | None = None  # alerts, once one is shipped

    def receiveMessage(self, message, sender):
        super().receiveMessage(message, sender)
        if self.wal is not None and not self.closed:
            self._send_backlog()
        # Not reading at the spool's cap (or, without a spool, while held
        # back) is the backpressure. Not reading while the outbox rests
        # after a chunk lets the pipes gather lines, read in one go when the
        # rest is over (on_tick): one read and one chunk per linger while
        # lines keep coming, and a line after a quiet spell still goes at once.
        resting = time.monotonic() < self.outbox.resting_until
        over = self.input_ended or self.closed
        if over or resting or not self._may_read():
            fds: tuple[int, ...] = ()
        else:
            fds = tuple(s.source.fd for s in self.streams if not s.ended and not s.source.polled)
        if fds != self.watched:
            self.watched = fds
            self.watch(readable=fds)
        if resting and not over:
            self.wake_at(self.outbox.resting_until)

    def _may_read(self) -> bool:
        """Whether to read the sources now. Once the child has exited, its
        pipes are read to their end whatever the spool's cap (they hold what
        they hold; waiting for room that may never come would never end)."""
        if self.wal is None:
            return False
        if self.wal.may_read(room=not self.holding_back()):
            return True
        return self.child is not None and self.child.exit_code() is not None

    def _send_backlog(self) -> None:
        """Send what waits in the spool (or, after it failed, in memory) while
        the pipeline has room; then the end of the stream, once all is sent."""
        for block in self.wal.backlog(lambda: not self.holding_back()):
            self.emit(block)
        if self.input_ended and not self.finished and self.wal.caught_up:
            self.finished = True
            self.emit(None, final=True)

    def on_configure(self, message: Configure) -> None:
        if self.started:
            return  # a repeated delivery of the same Configure
        self.started = True
        plan = message.plan
        streaming = message.settings.log_streaming
        self.new_splitter = lambda: LineSplitter(streaming.filters.max_message_length, streaming.partial_line_timeout)
        self.masker = SecretMasker(credentials(message.settings.auth))
        self.base_metadata = {"hostname": plan.hostname, "agentVersion": plan.agent_version}
        self.wal = WriteAhead.open(streaming.state_dir, plan.task_id, streaming.spool, self.log,
                                   enabled=streaming.spool.enabled)
        # The spool's run id, kept across restarts, so ids and line numbers carry on.
        self.run_id = self.wal.run_id or plan.run_id
        self.sync_worker = None
        if plan.command and not self._start_child(plan):
            return
        for spec in plan.sources:
            self._add_stream(spec, plan, streaming.state_dir)
        self.last_heard = time.monotonic()  # the last read that found data
        self._wake_for_next_poll(time.monotonic())

    def on_ready(self, readable: tuple[int, ...], writable: tuple[int, ...]) -> None:
        if self.input_ended or self.closed:
            return
        now = time.monotonic()
        by_fd = {stream.source.fd: stream for stream in self.streams if not stream.source.polled}
        for fd in readable:
            if fd in by_fd:
                self._read(by_fd[fd], now)
        self._finish_if_done(now)
        if not self.input_ended:
            self._wake_for_next_poll(now)  # sooner once a pipe has ended, or for a partial line

    def on_tick(self, now: float) -> None:
        if not self.input_ended and not self.closed and self._may_read():
            # What every pipe gathered while the outbox rested, in one chunk.
            self.gathering = True
            for stream in self.streams:
                if not stream.source.polled and not stream.ended:
                    self._read(stream, now)
            self.gathering = False
        self.flush_lingering(now)
        if self.closed:
            return
        self._sync_spool(now)
        if self.wal is not None:
            self.wal.report(meter.current())
        if self.input_ended:
            self.wake_at(now + POLL_INTERVAL)  # the spool's fsync goes on while the backlog drains
            return
        behind = False  # a tail stopped at its read cap
        for stream in self.streams:
            self._ship(stream, stream.splitter.expire(now))
            if stream.source.polled and not stream.ended and self._may_read():
                self._read(stream, now)
                behind = behind or stream.source.tail.more
        self._finish_if_done(now)
        if self.input_ended:
            self.wake_at(now + POLL_INTERVAL)  # the spool's fsync goes on while the backlog drains
        elif behind:
            self.wake_at(now)
        else:
            self._wake_for_next_poll(now)

    def _wake_for_next_poll(self, now: float) -> None:
        """At the next poll, or when a partial line must go, whichever is
        first. Seldom while only pipes are open and the spool has nothing to
        sync: a pipe says by itself when data comes."""
        busy = any(stream.source.polled or stream.ended for stream in self.streams) or self.wal.unsynced
        deadlines = [stream.splitter.deadline() for stream in self.streams]
        poll = now + (POLL_INTERVAL if busy else IDLE_POLL_INTERVAL)
        self.wake_at(min([poll] + [deadline for deadline in deadlines if deadline is not None]))

    def _sync_spool(self, now: float) -> None:
        """The interval fsync, on a worker thread: it may block for a while."""
        job = self.wal.sync_job(now)
        if job is not None:
            if self.sync_worker is None:
                self.sync_worker = reactor.Worker(reactor.current(), self.myAddress, "keruta-spool-sync")
            self.sync_worker.submit("sync", job)

    def receiveMsg_WorkDone(self, message: WorkDone, sender) -> None:
        if message.tag == "sync" and self.wal is not None:
            self.wal.synced(message.result)

    def receiveMsg_Delivered(self, message: Delivered, sender) -> None:
        if self.wal is None or self.closed:
            return
        self.wal.confirm(message.progress)
        for stream in self.streams:
            if isinstance(stream.source, TailedFile):
                for (namespace, _source), line in message.progress:
                    if namespace == stream.namespace:
                        stream.source.delivered(line)

    def receiveMsg_CloseInput(self, message: CloseInput, sender) -> None:
        if self.closed:
            return
        self.receiveMsg_Delivered(Delivered(message.progress), sender)
        self.closed = True
        self.watch()
        if self.child is not None and self.child.exit_code() is None:
            self.child.kill()  # the run ends before the child did (a stage failed)
        left = self.wal.close() if self.wal is not None else {}
        if self.sync_worker is not None:
            self.sync_worker.stop()
        wal = self.wal or WriteAhead(None, self.log)
        labels = {(s.namespace, s.wire_source): s.label for s in self.streams}
        labels[(getattr(self, "run_id", ""), "agent")] = "agent"  # alerts' records
        streams = set(wal.read) | set(wal.held_at_open) | set(left)
        self.send(sender, InputAccount(
            read=tuple(wal.read.items()),
            from_spool=tuple(wal.held_at_open.items()),
            left=tuple(left.items()),
            labels=tuple((stream, labels.get(stream) or f"{stream[1]} of {stream[0]}") for stream in sorted(streams)),
            spool=wal.directory,
            problem=wal.problem,
        ))

    def receiveMsg_ShipAgentRecord(self, message: ShipAgentRecord, sender) -> None:
        if self.started and not self.finished and not self.closed:
            if self.agent_records is None:
                plan = self.configured.plan
                self.agent_records = AgentRecords(self.run_id, {"processId": plan.cli_pid, **self.base_metadata})
                # numbered on after what the spool holds of the agent's stream
                self.agent_records.line_number = self.wal.last_line_number(self.run_id, "agent")
            block = self.agent_records.block(message.level, message.message, dict(message.metadata), time.time())
            ready = self.wal.take(block, room=not self.holding_back())  # written ahead, like a line read
            if ready is not None:
                self.emit(ready)

    def receiveMsg_Terminate(self, message: Terminate, sender) -> None:
        if self.child is not None:
            if not self.input_ended:
                self.child.signal(message.signum)
        else:
            self.stop_requested = True  # no child: the signal ends the input

    def on_exit(self) -> None:
        # The agent is shutting down early: no orphaned script may outlive it.
        if self.child is not None and self.child.exit_code() is None:
            self.child.kill()
        for stream in self.streams:
            if stream.source.polled:
                stream.source.close()  # kept open until now for late commits
        if self.wal is not None and not self.closed:
            self.closed = True
            self.wal.close()
        if self.sync_worker is not None:
            self.sync_worker.stop()

    def on_chunk(self, chunk) -> None:
        raise TypeError("the source reader has no upstream")

    # -- streams ---------------------------------------------------------------------

    def _start_child(self, plan) -> bool:
        self.child = ChildProcess(plan.command, plan.env, plan.work_dir)
        try:
            self.child.start()
        except ChildStartError as error:
            self.input_ended = self.finished = True
            self.send(self.configured.supervisor, ChildFailedToStart(str(error), error.exit_code))
            return False
        # the command line may carry a credential: it must not leave in metadata
        origin = (
            {"scriptPath": self.masker.mask_text(plan.script_path)}
            if plan.script_path
            else {"command": self.masker.mask_text(shlex.join(plan.command))}
        )
        shared = {"processId": self.child.pid, **self.base_metadata, **origin}
        for pipe in self.child.pipes:
            self.streams.append(self._stream(pipe, pipe.key, self.run_id, shared, echo_fd=ECHO_FD[pipe.key]))
        return True

    def _add_stream(self, spec: str, plan, state_dir: str) -> None:
        agent = {"processId": plan.cli_pid, **self.base_metadata}
        if spec == "stdin":
            stream = self._stream(agent_stdin(), "stdout", f"{self.run_id}.stdin", {**agent, "stream": "stdin"},
                                  label="stdin")
        else:
            path = os.path.abspath(spec[len("file:") :])
            tailed = TailedFile(path, offsets_file(state_dir, plan.task_id))
            if not tailed.tail.resumed.exact:
                self.log.warning("%s: resuming from the start (%s)", path, tailed.tail.resumed.reason)
            # The namespace comes from the task and the path, not the run, so
            # lines read again after a restart keep their ids.
            namespace = f"{plan.task_id}.file-{hashlib.sha256(path.encode()).hexdigest()[:12]}"
            stream = self._stream(tailed, "stdout", namespace, {**agent, "stream": f"file:{path}"},
                                  label=f"file:{path}")
            # Lines re-read after the committed offset get their old numbers;
            # the spool leaves out those it already holds.
            stream.line_number = tailed.first_line_number
        self.streams.append(stream)

    def _stream(self, source, wire_source: str, namespace: str, metadata: dict, echo_fd: int | None = None,
                label: str = "") -> Stream:
        return Stream(
            source=source,
            wire_source=wire_source,
            namespace=namespace,
            shared=(metadata,) * len(SOURCES),
            splitter=self.new_splitter(),
            default_level=default_level(wire_source),
            echo_fd=echo_fd,
            # numbering carries on after what the spool holds, or held, of the stream
            line_number=self.wal.last_line_number(namespace, wire_source),
            label=label or wire_source,
        )

    def _read(self, stream: Stream, now: float) -> bool:
        """Read what the source holds now; True if there was something."""
        data = stream.source.read()
        if data is None:
            stream.ended = True
            self._ship(stream, stream.splitter.finish(now))
            return False
        if not data:
            return False
        self.last_heard = now
        self._echo(stream, data)
        self._ship(stream, stream.splitter.feed(data, now))
        if isinstance(stream.source, TailedFile):
            stream.source.note(stream.line_number)
        return True

    def _read_all(self, stream: Stream, now: float) -> None:
        """Read until the source has nothing more right now."""
        while self._read(stream, now):
            pass

    def _ship(self, stream: Stream, lines: list) -> None:
        if not lines:
            return
        first = stream.line_number + 1
        stream.line_number += len(lines)
        levels = [detect_level(text, stream.default_level) for text, _ in lines]
        block = RecordBlock.of_lines(stream.namespace, stream.wire_source, first, time.time(), levels, lines,
                                     stream.shared)
        ready = self.wal.take(block, room=not self.holding_back())  # written ahead first
        if ready is not None:
            self.emit(ready, cut=not self.gathering)

    def _echo(self, stream: Stream, data: bytes) -> None:
        if stream.echo_fd is None:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(stream.echo_fd, view) :]
        except OSError:
            stream.echo_fd = None  # our own stdout is gone; keep shipping

    # -- the end -------------------------------------------------------------------------

    def _finish_if_done(self, now: float) -> None:
        if self.input_ended:
            return
        if self.child is not None:
            code = self.child.exit_code()
            if code is None or not self._child_pipes_done(now):
                return
        else:
            code = 0
            # a tailed file never ends by itself: only a signal ends its input
            if not self.stop_requested and not all(s.ended for s in self.streams):
                return
        for stream in self.streams:  # one last read of what the other sources hold
            if not stream.ended:
                self._read_all(stream, now)
            if not stream.ended:
                self._end_stream(stream, now)
        self.input_ended = True
        self._send_backlog()
        self.send(self.configured.supervisor, InputEnded(code, sum(s.line_number for s in self.streams)))

    def _child_pipes_done(self, now: float) -> bool:
        """True once the child's pipes are at EOF, or open but silent for
        PIPE_GRACE after it exited. Unread output is never dropped: while
        held back, or while the pipes still deliver, keep waiting.

        The pipes are read before their silence is judged: output the child
        wrote just before exiting may not have been reported readable yet
        (it came between the loop's select and this tick), and a pipe
        closed unread lost it: a short run's only line, with exit code 0."""
        open_pipes = [s for s in self.streams if s.source in self.child.pipes and not s.ended]
        if open_pipes and self._may_read():
            for stream in open_pipes:
                self._read(stream, now)  # once: a grandchild may keep writing
            open_pipes = [s for s in open_pipes if not s.ended]
        if not open_pipes:
            return True
        if not self._may_read() or now - self.last_heard < PIPE_GRACE:
            return False
        for stream in open_pipes:
            self._end_stream(stream, now)
        return True

    def _end_stream(self, stream: Stream, now: float) -> None:
        """Stop reading `stream` and ship its last, unfinished line."""
        if not stream.source.polled:  # a tail stays open for the last commits
            stream.source.close()
        stream.ended = True
        self._ship(stream, stream.splitter.finish(now))
