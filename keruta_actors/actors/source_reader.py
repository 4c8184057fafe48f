"""The source-reader stage: runs the child and turns its output into records.

Thespian wakes this actor when a pipe is readable (ThespianWatch, which works
on the multiprocTCPBase only). Each wake-up reads what is there, echoes it to
the agent's own stdout/stderr (so `kubectl logs` still shows the script), and
sends the complete lines on as one chunk. While the next stage is congested
the pipes are not watched: the child then blocks on write, which is the
backpressure the whole pipeline relies on.

When both pipes are closed and the child has exited, the final chunk goes
down the pipeline and the supervisor hears `ChildExited`.
"""

from __future__ import annotations

import os
import shlex
import time

from thespian.actors import ThespianWatch, WatchMessage

from keruta_actors.actors.stage import Stage
from keruta_actors.adapters.child_process import ChildProcess
from keruta_actors.errors import ChildStartError
from keruta_actors.messages import ChildExited, ChildFailedToStart, Configure, Terminate
from keruta_actors.policy.levels import default_level, detect_level
from keruta_actors.policy.filters import SecretMasker, credentials
from keruta_actors.policy.lines import LineSplitter
from keruta_actors.records import SOURCES, RecordBlock

# How often to look at the child while its pipes stay open.
CHILD_POLL_INTERVAL = 0.1
# After the child exits, how long its pipes may stay open and silent (a
# grandchild still holds them) before the reader stops waiting for EOF.
PIPE_GRACE = 2.0
ECHO_FD = {"stdout": 1, "stderr": 2}


class SourceReader(Stage):
    # A child printing a steady trickle of lines would otherwise cost a
    # message per line at every hop (~1 ms of CPU each). Lines after a quiet
    # spell still go at once; a steady trickle goes out every 50 ms.
    LINGER = 0.05

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.child: ChildProcess | None = None
        self.finished = False

    def receiveMessage(self, message, sender):
        super().receiveMessage(message, sender)
        # Not reading while held back is the backpressure; not reading while
        # the outbox lingers lets the pipe gather lines for one read.
        if self.child is None or self.finished or self.holding_back() or self.outbox.lingering_until():
            return ThespianWatch([])
        return ThespianWatch(list(self.child.pipes))

    def on_configure(self, message: Configure) -> None:
        if self.child is not None:
            return  # a repeated delivery of the same Configure
        plan = message.plan
        streaming = message.settings.log_streaming
        self.run_id = plan.run_id
        self.child = ChildProcess(plan.command)
        try:
            self.child.start()
        except ChildStartError as error:
            self.finished = True
            self.send(message.supervisor, ChildFailedToStart(str(error), error.exit_code))
            return
        self.splitters = {
            source: LineSplitter(streaming.filters.max_message_length, streaming.partial_line_timeout)
            for source in ("stdout", "stderr")
        }
        self.line_numbers = {"stdout": 0, "stderr": 0}
        self.default_levels = {source: default_level(source) for source in ("stdout", "stderr")}
        shared = {
            "processId": self.child.pid,
            "hostname": plan.hostname,
            "agentVersion": plan.agent_version,
        }
        # the command line may carry a credential: it must not leave in metadata
        masker = SecretMasker(credentials(message.settings.auth))
        if plan.script_path:
            shared["scriptPath"] = masker.mask_text(plan.script_path)
        else:
            shared["command"] = masker.mask_text(shlex.join(plan.command))
        self.shared = (shared,) * len(SOURCES)
        self.echo = {source: True for source in ("stdout", "stderr")}
        self.last_heard = time.monotonic()  # the last read that found data
        self.wake_at(time.monotonic() + CHILD_POLL_INTERVAL)

    def receiveMsg_WatchMessage(self, message: WatchMessage, sender) -> None:
        if self.finished:
            return
        now = time.monotonic()
        for fd in message.ready:
            source = self.child.pipes.get(fd)
            if source is None:
                continue
            data = self.child.read(fd)
            if data is None:
                self._ship(source, self.splitters[source].finish(now))
            elif data:
                self.last_heard = now
                self._echo(source, data)
                self._ship(source, self.splitters[source].feed(data, now))
        self._finish_if_done(now)

    def on_tick(self, now: float) -> None:
        self.flush_lingering(now)
        if self.finished:
            return
        for source, splitter in self.splitters.items():
            self._ship(source, splitter.expire(now))
        self._finish_if_done(now)
        if not self.finished:
            deadlines = [s.deadline() for s in self.splitters.values()]
            self.wake_at(min([now + CHILD_POLL_INTERVAL] + [d for d in deadlines if d is not None]))

    def receiveMsg_Terminate(self, message: Terminate, sender) -> None:
        if self.child is not None and not self.finished:
            self.child.signal(message.signum)

    def receiveMsg_ActorExitRequest(self, message, sender) -> None:
        # The agent is shutting down early: no orphaned script may outlive it.
        if self.child is not None and self.child.exit_code() is None:
            self.child.kill()

    def on_chunk(self, chunk) -> None:
        raise TypeError("the source reader has no upstream")

    def _ship(self, source: str, lines: list) -> None:
        if not lines:
            return
        first = self.line_numbers[source] + 1
        self.line_numbers[source] += len(lines)
        default = self.default_levels[source]
        levels = [detect_level(text, default) for text, _ in lines]
        self.emit(RecordBlock.of_lines(self.run_id, source, first, time.time(), levels, lines, self.shared))

    def _echo(self, source: str, data: bytes) -> None:
        if not self.echo[source]:
            return
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(ECHO_FD[source], view) :]
        except OSError:
            self.echo[source] = False  # our own stdout is gone; keep shipping

    def _finish_if_done(self, now: float) -> None:
        code = self.child.exit_code()
        if code is None:
            return
        if self.child.pipes:
            # Unread output is never dropped: while held back, or while the
            # pipes still deliver, wait; give up only on open, silent pipes.
            if self.holding_back() or now - self.last_heard < PIPE_GRACE:
                return
            for fd in list(self.child.pipes):
                source = self.child.pipes[fd]
                self.child.close_pipe(fd)
                self._ship(source, self.splitters[source].finish(now))
        self.finished = True
        self.emit(None, final=True)
        lines_read = sum(self.line_numbers.values())
        self.send(self.configured.supervisor, ChildExited(code, lines_read))
