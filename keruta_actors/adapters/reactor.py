"""The agent's one event loop: every actor in one process, driven from here.

The actors run on Thespian's simpleSystemBase, which delivers messages only
inside `tell`/`listen`, synchronously, in the caller's thread, and which
cannot watch file descriptors (no ThespianWatch). This loop stands in for
what the multiprocess base did with its own select:

- Actors name the descriptors they want to hear about (`watch`) and the one
  moment they next want to be woken (`wake_at`); the loop waits in a single
  `select` on those descriptors and the earliest moment, then tells each
  actor `FdsReady` or `Tick`, and Thespian runs every send that follows to
  completion before the loop waits again.
- Nothing may block the loop: blocking work (connecting, HTTP requests, DNS,
  TLS handshakes) runs on a `Worker` thread, whose results come back to the
  actor as `WorkDone` messages through the loop. `close` waits a moment
  for the jobs still under way (see `close`).
- Signals are turned into a byte on the loop's wake pipe
  (`signal.set_wakeup_fd`), so a signal ends the wait at once.

Thespian's own wakeups (`wakeupAfter`) are not used: on this base every send
scans their list, and `listen` would sleep through descriptors while waiting
for one. Timers keep Thespian's semantics all the same: a timer cannot be
cancelled, only superseded, and each `Tick` carries the generation it was
asked under.

The loop is process-wide (`install` / `current`), as the actors it serves
are: an actor finds it with `current()`.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from keruta_actors.messages import FdsReady, Tick, WorkDone

_current: "Reactor | None" = None
log = logging.getLogger(__name__)
# How long closing waits for workers' jobs: long enough for the CPU-bound
# ones (a TLS context, ~20 ms; an fsync); a job blocked on a silent peer is
# not waited for (see Reactor.close).
WORKER_GRACE = 2.0


def current() -> "Reactor":
    if _current is None:
        raise RuntimeError("no reactor is installed in this process")
    return _current


class Reactor:
    def __init__(self, system) -> None:
        self.system = system
        # Keyed by the actor's address string (addresses are not hashable).
        self._actors: dict[str, Any] = {}  # key -> address
        self._readers: dict[str, tuple[int, ...]] = {}  # key -> descriptors to read
        self._writers: dict[str, tuple[int, ...]] = {}
        self._timers: dict[str, tuple[float, int]] = {}  # key -> (due, generation)
        self._posted: queue.SimpleQueue = queue.SimpleQueue()  # (actor, message) from workers
        self._wake_read, self._wake_write = os.pipe()
        self._wake_lock = threading.Lock()
        self._closed = False
        self._workers: list[Worker] = []
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.outside: list[Any] = []  # messages the actors sent out of the system

    # -- the process-wide instance --------------------------------------------------

    def install(self) -> "Reactor":
        global _current
        _current = self
        return self

    def close(self, grace: float = WORKER_GRACE) -> None:
        """Close the loop, after waiting up to `grace` seconds for the
        workers' jobs to end. A job may be inside a C library (OpenSSL
        loading CA certificates, a TLS read) whose exit handlers free what
        it uses: a process that exits under such a job crashes (SIGSEGV), so
        one still running after the grace makes the process end without
        running them (process_exit.leave)."""
        global _current
        if _current is self:
            _current = None
        deadline = time.monotonic() + grace
        for worker in self._workers:
            worker.stop()  # after its queued jobs; a second stop is harmless
        for worker in self._workers:
            worker.join(deadline - time.monotonic())
        with self._wake_lock:  # a worker finishing now must not write to a closed (or reused) descriptor
            self._closed = True
            os.close(self._wake_read)
            os.close(self._wake_write)

    @property
    def wake_fd(self) -> int:
        """Write a byte here to end the loop's wait (signal.set_wakeup_fd)."""
        return self._wake_write

    # -- for actors (the loop's own thread) --------------------------------------------

    def watch(self, actor, readable: tuple[int, ...] = (), writable: tuple[int, ...] = ()) -> None:
        """Tell `actor` FdsReady when any of these descriptors is ready; replaces
        what it watched before (nothing: stop watching)."""
        key = self._key(actor)
        _replace(self._readers, key, readable)
        _replace(self._writers, key, writable)

    def wake_at(self, actor, due: float, generation: int) -> None:
        """Tell `actor` Tick(generation) at monotonic time `due`; replaces its
        pending timer (one per actor)."""
        self._timers[self._key(actor)] = (due, generation)

    def forget(self, actor) -> None:
        """The actor is gone: drop its descriptors and its timer."""
        key = actor.actorAddressString
        for table in (self._actors, self._readers, self._writers, self._timers):
            table.pop(key, None)

    def adopt(self, worker: "Worker") -> None:
        """Track `worker` so that `close` waits for it."""
        self._workers = [other for other in self._workers if other.running] + [worker]

    # -- for worker threads ---------------------------------------------------------

    def post(self, actor, message) -> None:
        """From any thread: deliver `message` to `actor` from the loop."""
        self._posted.put((actor, message))
        with self._wake_lock:
            if self._closed:
                return  # the loop is gone (a job outlived the agent's shutdown): nobody is left to tell
            try:
                os.write(self._wake_write, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already

    # -- the loop ------------------------------------------------------------------------

    def tell(self, actor, message) -> None:
        """Deliver from outside the actors, and keep what they send out."""
        self.system.tell(actor, message)
        self._collect_outside()

    def take_outside(self) -> list[Any]:
        """What the actors sent out of the system since the last call."""
        taken, self.outside = self.outside, []
        return taken

    def run_once(self, max_wait: float) -> None:
        """Wait for the first ready descriptor, due timer, posted result or
        signal (at most `max_wait` seconds), and deliver what is ready."""
        now = time.monotonic()
        due = min((at for at, _ in self._timers.values()), default=None)
        wait = max_wait if due is None else min(max_wait, max(0.0, due - now))
        readers = {fd: key for key, fds in self._readers.items() for fd in fds}
        writers = {fd: key for key, fds in self._writers.items() for fd in fds}
        readable: list[int] = []
        writable: list[int] = []
        if self._posted.empty():
            try:
                readable, writable, _ = select.select([self._wake_read, *readers], list(writers), [], wait)
            except (OSError, ValueError):  # a descriptor closed while still watched
                self._drop_closed(readers, writers)
                return
        if self._wake_read in readable:
            _drain(self._wake_read)
        self._deliver_ready(readable, writable, readers, writers)
        self._deliver_posted()
        self._deliver_timers(time.monotonic())
        self._collect_outside()

    def run_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Run until `done()` (checked after each round) or `timeout`; returns done()."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return done()
            self.run_once(left)
        return True

    def _deliver_ready(self, readable, writable, readers, writers) -> None:
        ready: dict[str, tuple[list[int], list[int]]] = {}
        for fd in readable:
            if fd in readers:
                ready.setdefault(readers[fd], ([], []))[0].append(fd)
        for fd in writable:
            if fd in writers:
                ready.setdefault(writers[fd], ([], []))[1].append(fd)
        for key, (can_read, can_write) in ready.items():
            if key in self._actors:  # not forgotten by an earlier delivery of this round
                self.system.tell(self._actors[key], FdsReady(tuple(can_read), tuple(can_write)))

    def _deliver_posted(self) -> None:
        while True:
            try:
                actor, message = self._posted.get_nowait()
            except queue.Empty:
                return
            self.system.tell(actor, message)

    def _deliver_timers(self, now: float) -> None:
        due = [(key, generation) for key, (at, generation) in self._timers.items() if at <= now]
        for key, generation in due:
            if self._timers.get(key, (0.0, -1))[1] == generation:
                del self._timers[key]
            if key in self._actors:  # not forgotten by an earlier delivery of this round
                self.system.tell(self._actors[key], Tick(generation))

    def _collect_outside(self) -> None:
        while True:
            message = self.system.listen(0)
            if message is None:
                return
            self.outside.append(message)

    def _drop_closed(self, readers: dict[int, str], writers: dict[int, str]) -> None:
        """Stop watching descriptors that are no longer open: the actor that
        closed one forgot to say so, which must not stop the whole agent."""
        for fd, key in (*readers.items(), *writers.items()):
            try:
                os.fstat(fd)
            except OSError:
                log.warning("stopped watching descriptor %d: it was closed while watched", fd)
                for table in (self._readers, self._writers):
                    if fd in table.get(key, ()):
                        _replace(table, key, tuple(other for other in table[key] if other != fd))

    def _key(self, actor) -> str:
        key = actor.actorAddressString
        self._actors[key] = actor
        return key


class Worker:
    """One thread doing one actor's blocking work, in order, reporting each
    result (or the exception it raised) to the actor as WorkDone(tag, result)."""

    def __init__(self, reactor: Reactor, actor, name: str) -> None:
        self._reactor = reactor
        self._actor = actor
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        reactor.adopt(self)

    def submit(self, tag: str, job: Callable[[], Any]) -> None:
        self._jobs.put((tag, job))

    def stop(self) -> None:
        """No more jobs; the one under way, if any, finishes on its own."""
        self._jobs.put(None)

    @property
    def running(self) -> bool:
        """Its thread is alive: in a job, or (not stopped yet) waiting for one."""
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        self._thread.join(max(0.0, timeout))

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            tag, job = item
            try:
                result = job()
            except Exception as error:  # noqa: BLE001 - handed to the actor, which decides
                result = error
            self._reactor.post(self._actor, WorkDone(tag, result))


def _replace(table: dict, actor, fds: tuple[int, ...]) -> None:
    if fds:
        table[actor] = tuple(fds)
    else:
        table.pop(actor, None)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
